"""Every optional method the core may call on a plugin's object, as a ``typing.Protocol`` (public).

Ask :func:`implements(obj, Protocol) <implements>` rather than ``hasattr``; the conformance kit
(:mod:`engine.testing`) checks that an object having such a method has it with a signature the core can
call. Each protocol is documented in :mod:`engine._contract.protocols` and in docs/hooks.md.
"""

from engine._contract.protocols import (
    ChecksData,
    ChecksRun,
    ChoosesBest,
    Collates,
    DataSource,
    DeclaresBatching,
    DeployTarget,
    DescribesArtifact,
    EvaluatesRun,
    GroupsSamples,
    HasFacts,
    HasPrimaryMetric,
    HasSplits,
    LoadsArtifacts,
    LoadsInput,
    ReportsSummary,
    SavesArtifacts,
    implements,
)

__all__ = [
    "ChecksData",
    "ChecksRun",
    "ChoosesBest",
    "Collates",
    "DataSource",
    "DeclaresBatching",
    "DeployTarget",
    "DescribesArtifact",
    "EvaluatesRun",
    "GroupsSamples",
    "HasFacts",
    "HasPrimaryMetric",
    "HasSplits",
    "LoadsArtifacts",
    "LoadsInput",
    "ReportsSummary",
    "SavesArtifacts",
    "implements",
]
