"""A naive FastAPI server over the same model as `engine serve`, for the P5 comparison (a bench helper).

    python plugins/deploy/bench/_fastapi_server.py --run RUN --port P [--threads 1]

What one writes first: one ``POST /predict`` route, the JSON body parsed by FastAPI, one model
call per request, no batching, the result returned as a dict for FastAPI to encode. The model
and its post-processing are the engine's own (``Predictor``: eager PyTorch, ``.array()`` to
check the inputs, ``.predict()`` for the records), so the work per sample is the same as in
`engine serve`. The route is ``async``, so the model runs on the event loop: one request
computes at a time with ``--threads`` torch threads, as in `engine serve` (one model thread).
"""

from __future__ import annotations

import argparse
from typing import Any

from fastapi import FastAPI, HTTPException, Request


def create_app(run: str) -> Any:
    import torch
    from engine_deploy.inputs import InputError
    from engine_deploy.predictor import Predictor

    predictor = Predictor(run)
    app = FastAPI(title="naive FastAPI server (P5 bench)")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        try:
            payload = await request.json()
        except ValueError as exc:
            raise HTTPException(400, f"malformed JSON: {exc}") from None
        if not isinstance(payload, dict) or "inputs" not in payload:
            raise HTTPException(422, 'expected a JSON object {"inputs": [...], "top_k": 3}')
        top_k = payload.get("top_k", 3)
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise HTTPException(422, f"top_k must be a positive integer, got {top_k!r}")
        try:
            x = predictor.array(payload["inputs"])
        except InputError as exc:
            raise HTTPException(422, exc.message) from None
        return {"predictions": predictor.predict(torch.from_numpy(x), top_k)}

    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a trained run directory")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--log-level", default="warning")
    args = ap.parse_args()

    import torch
    import uvicorn

    if args.threads:
        torch.set_num_threads(args.threads)
    app = create_app(args.run)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)


if __name__ == "__main__":
    main()
