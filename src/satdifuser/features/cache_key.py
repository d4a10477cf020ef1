"""The key of a feature cache: everything that changes the stored features, field by field.

Two caches are interchangeable exactly when their fingerprints are equal. The fingerprint is a
flat JSON dict so that a mismatch can name each field that differs (``spec.timesteps``,
``storage_dtype``, ``sample_ids``...) instead of only saying that two hashes differ.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

from satdifuser.features.spec import FeatureInfo

FORMAT_VERSION = 1
"""On-disk format of the cache; bumped when the layout changes."""

STORAGE_DTYPES = ("float16", "bfloat16", "float32")
"""Dtypes a cache can store features in."""


def ids_digest(ids: Sequence[str]) -> str:
    """sha256 of the ordered sample ids (order matters: it is the cache's row order)."""
    h = hashlib.sha256()
    for i in ids:
        h.update(str(i).encode())
        h.update(b"\n")
    return h.hexdigest()


def feature_info_rows(feature_info: Sequence[FeatureInfo]) -> list[list[object]]:
    """``FeatureInfo`` list as JSON rows ``[tap, timestep, channels, reduction]``."""
    return [[f.tap, f.timestep, f.channels, f.reduction] for f in feature_info]


def feature_info_from_rows(rows: Sequence[Sequence[object]]) -> list[FeatureInfo]:
    """Inverse of :func:`feature_info_rows`."""
    return [FeatureInfo(str(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows]  # type: ignore[call-overload]


def describe_backbone(extractor: object) -> str | None:
    """Best-effort readable name of the extractor's backbone weights (for messages only)."""
    for attr in ("backbone_id", "weights_id", "backbone_name"):
        value = getattr(extractor, attr, None)
        if isinstance(value, str):
            return value
    backbone = getattr(extractor, "backbone", None)
    name, weights = getattr(backbone, "name", None), getattr(backbone, "weights_id", None)
    if isinstance(name, str) and callable(weights):
        return f"{name}@{str(weights())[:12]}"
    for attr in ("weights_id", "identity", "name", "name_or_path"):
        value = getattr(backbone, attr, None)
        value = value() if callable(value) else value
        if isinstance(value, str):
            return value
    return type(backbone).__name__ if backbone is not None else None


_SKIP_ATTRS = frozenset({
    "download", "cache", "progress", "num_workers", "generator", "training", "verbose",
})
"""Dataset attributes that never change images or labels (left out of the dataset identity)."""

_MAX_INLINE = 64
"""Longer lists and dicts are replaced by their digest in the dataset identity."""


def _digest(value: object) -> str:
    payload = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()[:16]


def _plain(value: object, depth: int = 0) -> object:
    """A JSON-able stand-in for ``value`` that changes whenever the value does."""
    import dataclasses
    from pathlib import PurePath

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, PurePath):
        return str(value)
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy / torch
        try:
            return _plain(value.tolist(), depth + 1)
        except (TypeError, ValueError):
            pass
    if depth > 4:
        return repr(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        out = {str(k): _plain(v, depth + 1) for k, v in value.items()}
        return out if len(out) <= _MAX_INLINE else _digest(out)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        seq = [_plain(v, depth + 1) for v in items]
        return seq if len(seq) <= _MAX_INLINE else _digest(seq)
    if callable(value):
        name = getattr(value, "__qualname__", None) or type(value).__qualname__
        module = getattr(value, "__module__", None) or type(value).__module__
        text = repr(value)
        return f"{module}.{name}" + ("" if " at 0x" in text else f"={text}")
    if hasattr(value, "__dict__"):
        return {"class": type(value).__qualname__,
                **{k: _plain(v, depth + 1) for k, v in sorted(vars(value).items())
                   if not k.startswith("_")}}  # fmt: skip
    return repr(value)


def dataset_identity(dataset: object) -> dict[str, object]:
    """Everything about ``dataset`` that can change the images or labels it serves.

    A dataset may define ``cache_identity() -> dict`` to say it exactly; otherwise every public
    attribute is taken (band selection, scaling, nodata handling, tiling, resizing, transforms,
    file lists and labels as digests), minus :data:`_SKIP_ATTRS`. Wrappers (``Subset``) add
    their indices and the identity of the wrapped dataset. Any change of such an option changes
    the cache key, so a cache is never served for other images or labels.
    """
    own = getattr(dataset, "cache_identity", None)
    if callable(own):
        return {"class": type(dataset).__qualname__, **{k: _plain(v) for k, v in own().items()}}
    out: dict[str, object] = {"class": f"{type(dataset).__module__}.{type(dataset).__qualname__}"}
    for key, value in sorted(vars(dataset).items()):
        if key.startswith("_") or key in _SKIP_ATTRS:
            continue
        if key == "dataset" and hasattr(value, "__getitem__"):
            out[key] = dataset_identity(value)
        else:
            out[key] = _plain(value)
    return json.loads(json.dumps(out, default=str))


def build_fingerprint(
    *,
    extractor_identity: str,
    backbone: str | None,
    spec: Mapping[str, object],
    feature_info: Sequence[FeatureInfo],
    keep_taps: Sequence[str] | None,
    storage_dtype: str,
    ids: Sequence[str],
    dataset: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """Flat fingerprint of a cache.

    Args:
        extractor_identity: ``FeatureExtractor.identity()`` (weights id, spec, preprocessing).
        backbone: Readable backbone/weights name (for messages; the identity already covers it).
        spec: ``FeatureSpec.to_dict()``; each field becomes ``spec.<name>``.
        feature_info: The maps stored (after ``keep_taps``).
        keep_taps: Tap patterns kept, or None for all.
        storage_dtype: One of :data:`STORAGE_DTYPES`.
        ids: Sample ids in row order.
        dataset: :func:`dataset_identity` of the source; each field becomes ``dataset.<name>``.

    Returns:
        JSON-able dict; equal dicts mean interchangeable caches.
    """
    fp: dict[str, object] = {"format_version": FORMAT_VERSION, "extractor": extractor_identity}
    fp["backbone"] = backbone
    for name, value in sorted(spec.items()):
        fp[f"spec.{name}"] = value
    fp["feature_info"] = feature_info_rows(feature_info)
    fp["keep_taps"] = list(keep_taps) if keep_taps is not None else None
    fp["storage_dtype"] = storage_dtype
    fp["num_samples"] = len(ids)
    fp["sample_ids"] = ids_digest(ids)
    for name, value in sorted((dataset or {}).items()):
        fp[f"dataset.{name}"] = value
    return json.loads(json.dumps(fp))


MESSAGE_FIELDS = frozenset({"backbone"})
"""Fingerprint fields kept for messages only: the readable backbone name (a registry name or a
folder path of the same weights) never decides whether two caches are interchangeable; the
extractor identity already holds the weights' content id."""


def comparable(fingerprint: Mapping[str, object]) -> dict[str, object]:
    """The fields of ``fingerprint`` that decide whether caches are interchangeable."""
    return {k: v for k, v in fingerprint.items() if k not in MESSAGE_FIELDS}


def same_features(a: Mapping[str, object], b: Mapping[str, object]) -> bool:
    """True when caches with fingerprints ``a`` and ``b`` hold the same features."""
    return comparable(a) == comparable(b)


def fingerprint_digest(fingerprint: Mapping[str, object]) -> str:
    """Short stable hash of a fingerprint (the cache key; message-only fields excluded)."""
    payload = json.dumps(comparable(fingerprint), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _short(value: object, limit: int = 60) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fingerprint_differences(
    cached: Mapping[str, object],
    asked: Mapping[str, object],
    cached_ids: Sequence[str] | None = None,
    asked_ids: Sequence[str] | None = None,
) -> list[str]:
    """Human-readable differences, one per field (empty when the fingerprints are equal)."""
    diffs = []
    for name in list(dict.fromkeys([*cached, *asked])):
        a, b = cached.get(name), asked.get(name)
        if a == b or (name in MESSAGE_FIELDS and cached.get("extractor") == asked.get("extractor")):
            continue
        if name == "sample_ids":
            text = "sample ids differ"
            if cached_ids is not None and asked_ids is not None:
                first = next(
                    (
                        i
                        for i, (x, y) in enumerate(zip(cached_ids, asked_ids, strict=False))
                        if x != y
                    ),
                    min(len(cached_ids), len(asked_ids)),
                )
                got = cached_ids[first] if first < len(cached_ids) else "<end>"
                want = asked_ids[first] if first < len(asked_ids) else "<end>"
                text += f" (first at row {first}: cache {got!r}, asked {want!r})"
            diffs.append(text)
        elif name == "extractor":
            diffs.append("extractor identity (backbone weights or preprocessing) differs")
        else:
            diffs.append(f"{name}: cache {_short(a)}, asked {_short(b)}")
    # the identity covers spec fields; do not report it alone when a visible field explains it
    if len(diffs) > 1:
        diffs = [d for d in diffs if not d.startswith("extractor identity")]
    return diffs


__all__ = [
    "FORMAT_VERSION",
    "STORAGE_DTYPES",
    "build_fingerprint",
    "dataset_identity",
    "describe_backbone",
    "feature_info_from_rows",
    "feature_info_rows",
    "fingerprint_differences",
    "fingerprint_digest",
    "ids_digest",
]
