"""LitServe serving the same model as `engine serve`, for the P5 comparison (a bench helper).

    python plugins/deploy/bench/_litserve_server.py --run RUN --port P [--max-batch-size 32]
        [--batch-timeout-ms 5] [--threads 1]

One LitServe inference worker on the CPU (``accelerator="cpu"``, ``workers_per_device=1``)
and one API server process, LitServe's defaults otherwise. Batching is LitServe's own:
``LitAPI(max_batch_size=N, batch_timeout=seconds)`` (so in LitServe 0.2.19; the same arguments
of ``LitServer`` are deprecated there). The worker gathers up to N requests, waiting at most
``batch_timeout`` from when it starts collecting, then calls ``decode_request`` on each,
``batch`` on the list, ``predict`` once, ``unbatch``, and ``encode_response`` on each.

The model and its post-processing are the engine's own, loaded in the worker's ``setup``:
``Predictor(run)`` (eager PyTorch), ``.array()`` checks each request's inputs as `engine serve`
does, and ``.predict(batch, top_k)`` gives the records, once per batch, as in `engine serve`.
"""

from __future__ import annotations

import argparse
from typing import Any

import litserve as ls


class PredictorAPI(ls.LitAPI):
    """The engine's ``Predictor`` behind LitServe's hooks; requests and answers as in `engine serve`."""

    def __init__(self, run: str, threads: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run, self.threads = run, threads

    def setup(self, device: str) -> None:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        from engine_deploy.predictor import Predictor

        self.predictor = Predictor(self.run)

    def decode_request(self, request, **kwargs):  # no annotations: LitServe reads them
        from engine_deploy.inputs import InputError
        from fastapi import HTTPException

        if not isinstance(request, dict) or "inputs" not in request:
            raise HTTPException(422, 'expected a JSON object {"inputs": [...], "top_k": 3}')
        top_k = request.get("top_k", 3)
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise HTTPException(422, f"top_k must be a positive integer, got {top_k!r}")
        try:
            return self.predictor.array(request["inputs"]), top_k
        except InputError as exc:
            raise HTTPException(422, exc.message) from None

    def batch(self, inputs: list[tuple[Any, int]]) -> tuple[Any, list[int], list[int]]:
        import numpy as np

        arrays = [x for x, _ in inputs]
        return np.concatenate(arrays), [len(x) for x in arrays], [k for _, k in inputs]

    def predict(self, x: Any, **kwargs: Any) -> Any:
        import torch

        if self.max_batch_size == 1:  # LitServe's unbatched loop: x is one decoded request
            array, top_k = x
            return self.predictor.predict(torch.from_numpy(array), top_k)
        array, sizes, top_ks = x
        records = self.predictor.predict(torch.from_numpy(array), max(top_ks))
        out, start = [], 0
        for n, k in zip(sizes, top_ks, strict=True):
            mine = records[start : start + n]
            if k < max(top_ks):  # this request asked for fewer labels than the batch computed
                mine = [{**r, "top": r["top"][:k]} if "top" in r else r for r in mine]
            out.append(mine)
            start += n
        return out

    def unbatch(self, output: Any) -> list[Any]:
        return list(output)

    def encode_response(self, output, **kwargs):  # no annotations: LitServe reads them
        return {"predictions": output}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a trained run directory")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--max-batch-size", type=int, default=32)
    ap.add_argument("--batch-timeout-ms", type=float, default=5.0, help="LitServe's batch_timeout, in ms")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads in the worker (0: torch's)")
    ap.add_argument("--log-level", default="warning")
    args = ap.parse_args()

    api = PredictorAPI(
        args.run, args.threads, max_batch_size=args.max_batch_size, batch_timeout=args.batch_timeout_ms / 1000
    )
    server = ls.LitServer(api, accelerator="cpu", devices=1, workers_per_device=1)
    server.run(host=args.host, port=args.port, num_api_servers=1, log_level=args.log_level, generate_client_file=False)


if __name__ == "__main__":
    main()
