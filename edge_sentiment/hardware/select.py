"""The provider selector: a pure function from facts to an ordered plan.

``select_plan`` does no I/O. It takes the hardware facts, what is installed,
the matched profile, the user's request and the bundle's artifacts, and
returns candidates in the order to try, each with the reason it was chosen,
plus every rejected alternative with the reason it was rejected.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..backends import REGISTRY
from ..errors import BundleError, RuntimeUnavailableError
from ..manifest import Artifact
from .detect import HardwareFacts
from .profiles import Profile


@dataclass(frozen=True)
class Request:
    """What the user asked for: ``auto`` or a runtime, optional provider and threads."""

    runtime: str = "auto"
    provider: str | None = None
    threads: int | None = None


@dataclass(frozen=True)
class Candidate:
    backend: str
    provider: str
    artifact: Artifact
    threads: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        out = {"backend": self.backend, "provider": self.provider, "threads": self.threads,
               "artifact": self.artifact.file, "precision": self.artifact.precision,
               "reason": self.reason}
        if self.artifact.lengths:  # fixed-length signatures: each text runs in the shortest
            out["lengths"] = list(self.artifact.lengths)
        return out


@dataclass(frozen=True)
class Rejection:
    backend: str
    provider: str | None
    reason: str


@dataclass(frozen=True)
class Plan:
    candidates: tuple[Candidate, ...]
    rejected: tuple[Rejection, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {"candidates": [c.to_json() for c in self.candidates],
                "rejected": [asdict(r) for r in self.rejected]}


def _threads(facts: HardwareFacts, profile: Profile, request: Request) -> int:
    if request.threads is not None:
        return max(1, request.threads)
    wanted = profile.threads or min(facts.cores, 4)
    return max(1, min(wanted, facts.cores))


def _providers(backend: str, profile: Profile, request: Request,
               installed: list[str], rejected: list[Rejection]) -> list[tuple[str, str]]:
    """(provider, reason) pairs for one backend, in preference order."""
    wanted = [request.provider] if request.provider else list(profile.providers[backend])
    chosen = []
    for provider in wanted:
        if provider not in installed:
            rejected.append(Rejection(backend, provider,
                                      f"provider not available here (installed: {installed})"))
        else:
            how = "requested" if request.provider else f"profile {profile.name} order"
            chosen.append((provider, how))
    return chosen


def _lengths(art: Artifact) -> str:
    return f" (lengths {'/'.join(map(str, art.lengths))})" if art.lengths else ""


def _artifacts(backend: str, artifacts: tuple[Artifact, ...], profile: Profile) -> list[Artifact]:
    mine = [a for a in artifacts if a.runtime == backend]
    rank = {p: i for i, p in enumerate(profile.precision)}
    return sorted(mine, key=lambda a: rank.get(a.precision, len(rank)))


def _backend_order(profile: Profile, request: Request) -> list[tuple[str, str]]:
    if request.runtime != "auto":
        return [(request.runtime, "requested explicitly")]
    order = [(b, f"preferred by profile {profile.name}") for b in profile.backends]
    order += [(b, "fallback: not in the profile's list") for b in REGISTRY if b not in profile.backends]
    return order


def select_plan(facts: HardwareFacts, runtimes: dict[str, str], providers: dict[str, list[str]],
                profile: Profile, request: Request, artifacts: tuple[Artifact, ...]) -> Plan:
    """Return the ordered plan; raise when nothing can run.

    An explicit request that cannot be met raises :class:`RuntimeUnavailableError`
    listing what is available; there is no silent fallback.
    """
    if request.runtime != "auto" and request.runtime not in REGISTRY:
        raise RuntimeUnavailableError(f"unknown runtime {request.runtime!r}; "
                                      f"choose auto, {', '.join(REGISTRY)}")
    threads = _threads(facts, profile, request)
    candidates: list[Candidate] = []
    rejected: list[Rejection] = []
    for backend, why in _backend_order(profile, request):
        if backend not in runtimes:
            rejected.append(Rejection(backend, None, "runtime not installed "
                                      f"(pip install 'edge-sentiment[{REGISTRY[backend].extra}]')"))
            continue
        arts = _artifacts(backend, artifacts, profile)
        if not arts:
            rejected.append(Rejection(backend, None, "bundle has no artifact for this runtime"))
            continue
        for provider, how in _providers(backend, profile, request,
                                        providers.get(backend, []), rejected):
            for art in arts:
                reason = f"{why}; provider {provider} ({how}); {art.precision} artifact " \
                         f"{art.file}{_lengths(art)}; {threads} threads"
                candidates.append(Candidate(backend, provider, art, threads, reason))
    if not candidates:
        _raise_empty(request, runtimes, providers, artifacts, rejected)
    return Plan(tuple(candidates), tuple(rejected))


def _raise_empty(request: Request, runtimes: dict[str, str], providers: dict[str, list[str]],
                 artifacts: tuple[Artifact, ...], rejected: list[Rejection]) -> None:
    has = ", ".join(f"{a.runtime}/{a.precision}" for a in artifacts)
    can = ", ".join(f"{r} ({', '.join(providers.get(r, []))})" for r in runtimes) or "nothing"
    why = "; ".join(f"{r.backend}{'/' + r.provider if r.provider else ''}: {r.reason}"
                    for r in rejected)
    message = f"bundle has [{has}]; this machine can run [{can}]; rejected: {why}"
    if request.runtime != "auto" or request.provider:
        raise RuntimeUnavailableError(f"cannot run runtime={request.runtime} "
                                      f"provider={request.provider or 'any'}: {message}")
    raise BundleError(f"no artifact in this bundle can run here: {message}")
