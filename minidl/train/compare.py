"""Are two runs the same run? Their manifests (``minidl.train.manifest``) and digest logs
(``minidl.train.digestlog``) compared: ``compareRuns(folderA, folderB)``.

Two runs are bit-identical when their manifests agree (settings that cannot change a number, such as the output
folder or ``--resume``, left out: ``IGNORED_SETTINGS``) and their digest logs hold the same steps with the same
digests. Otherwise the comparison names what differs in the manifests and the first logged step (of the steps both
logs hold) whose digests differ, with the dtype groups that differ there and the last step where they agreed.
"""

import os
from dataclasses import dataclass, field

from minidl.errors import CheckpointError
from minidl.train.digestlog import readDigests
from minidl.train.manifest import readManifest

MANIFEST_NAME = "manifest.json"
DIGESTS_NAME = "digests.jsonl"
IGNORED_SETTINGS = ("out", "resume", "overwrite", "plot", "tensorboard")


def flatten(value, prefix=""):
    """{dotted key: leaf value} of nested dicts."""
    if isinstance(value, dict) and value:
        flat = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def manifestDifferences(a, b):
    """[(dotted key, value in a, value in b)] where the manifests differ, ignored settings left out."""
    flatA, flatB = flatten(a), flatten(b)
    ignored = {f"settings.{name}" for name in IGNORED_SETTINGS}
    return [(key, flatA.get(key), flatB.get(key)) for key in sorted(set(flatA) | set(flatB))
            if key not in ignored and flatA.get(key) != flatB.get(key)]


@dataclass
class Comparison:
    """What ``compareRuns`` found: the manifests' differences, the steps both logs hold, and the first parting
    (``parting``: that step's lines in a and b, or None) with the last step before it where they agreed."""

    manifest: list = field(default_factory=list)
    common: list = field(default_factory=list)
    onlyA: list = field(default_factory=list)
    onlyB: list = field(default_factory=list)
    parting: tuple = None
    lastAgreed: int = None

    @property
    def identical(self):
        return not self.manifest and not self.onlyA and not self.onlyB and self.parting is None and bool(self.common)

    def lines(self):
        """The report, a line at a time."""
        out = []
        if self.identical:
            out.append(f"bit-identical: same manifest, the same digests at all {len(self.common)} logged steps "
                       f"(the last: step {self.common[-1]})")
            return out
        for key, a, b in self.manifest:
            out.append(f"manifest: {key}: {a!r:.80} vs {b!r:.80}")
        if not self.manifest:
            out.append("manifest: the same")
        if self.parting is not None:
            lineA, lineB = self.parting
            groups = sorted(name for name in set(lineA["digests"]) | set(lineB["digests"])
                            if lineA["digests"].get(name) != lineB["digests"].get(name))
            agreed = "no logged step before it" if self.lastAgreed is None else f"the last that agree: step " \
                f"{self.lastAgreed}"
            out.append(f"parted at step {lineA['step']} (epoch {lineA['epoch']}): digests of {', '.join(groups)} "
                       f"differ ({agreed})")
        elif self.common:
            out.append(f"digests: the same at all {len(self.common)} steps both logs hold (the last: step "
                       f"{self.common[-1]})")
        else:
            out.append("digests: the logs hold no step in common")
        for name, only in (("A", self.onlyA), ("B", self.onlyB)):
            if only:
                out.append(f"steps only run {name} logged: {only[:5]}{' ...' if len(only) > 5 else ''}")
        return out


def readRun(folder):
    """(manifest, digest lines) of a run's folder; CheckpointError naming what is missing."""
    manifestPath, digestsPath = (os.path.join(folder, name) for name in (MANIFEST_NAME, DIGESTS_NAME))
    for path in (manifestPath, digestsPath):
        if not os.path.isfile(path):
            raise CheckpointError(f"{folder} is not a run folder: it has no {os.path.basename(path)}")
    try:
        lines = readDigests(digestsPath)
    except ValueError as error:
        raise CheckpointError(f"cannot read the digest log {digestsPath}: {error}") from error
    return readManifest(manifestPath), lines


def compareRuns(folderA, folderB):
    manifestA, linesA = readRun(folderA)
    manifestB, linesB = readRun(folderB)
    byStepA, byStepB = ({line["step"]: line for line in lines} for lines in (linesA, linesB))
    result = Comparison(manifest=manifestDifferences(manifestA, manifestB))
    result.common = sorted(set(byStepA) & set(byStepB))
    result.onlyA, result.onlyB = sorted(set(byStepA) - set(byStepB)), sorted(set(byStepB) - set(byStepA))
    for step in result.common:
        if byStepA[step]["digests"] != byStepB[step]["digests"]:
            result.parting = byStepA[step], byStepB[step]
            break
        result.lastAgreed = step
    return result
