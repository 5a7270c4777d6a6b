"""Every optional method the core may call on a plugin's object, as a ``typing.Protocol`` (public).

Ask `implements(obj, Protocol)` rather than ``hasattr``.
"""

from engine._contract.protocols import (
    ChecksData,
    ChecksRun,
    ChoosesBest,
    Collates,
    DataSource,
    DeclaresBatching,
    DeclaresIO,
    DeployTarget,
    DescribesArtifact,
    EncodesText,
    EvaluatesRun,
    Generates,
    GroupsSamples,
    HasFacts,
    HasPrimaryMetric,
    HasSplits,
    LoadsArtifacts,
    LoadsInput,
    MergesAdapters,
    ReportsSummary,
    SavesArtifacts,
    implements,
)

__all__ = ["ChecksData", "ChecksRun", "ChoosesBest", "Collates", "DataSource", "DeclaresBatching", "DeployTarget"]
__all__ += ["DescribesArtifact", "EvaluatesRun", "GroupsSamples", "HasFacts", "HasPrimaryMetric", "HasSplits"]
__all__ += ["DeclaresIO", "EncodesText", "Generates", "MergesAdapters"]
__all__ += ["LoadsArtifacts", "LoadsInput", "ReportsSummary", "SavesArtifacts", "implements"]
