"""Match a model's channels with a stream's or a recording's, the way real files name them.

The same electrode is written ``C3``, ``c3``, ``C3..`` (EEGMMIDB's EDF pads labels with dots),
``EEG C3-REF`` / ``EEG C3-LE`` (TUH and many clinical EDFs: a type prefix and a reference suffix),
and the four temporal/parietal electrodes have two names since the 10-10 system: ``T3``/``T7``,
``T4``/``T8``, ``T5``/``P7``, ``T6``/``P8`` (the pairs that share one position in MNE's standard
1005 montage; a test checks the table against it). :func:`channel_key` maps all spellings of one
electrode to one key; :func:`match_channels` says which model channels were found, how, and which
are missing.
"""
from __future__ import annotations

import dataclasses
import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence

logger = logging.getLogger(__name__)

#: Old 10-20 name -> 10-10 name (same position in MNE's standard_1005 montage), lower case.
ALIASES: dict[str, str] = {"t3": "t7", "t4": "t8", "t5": "p7", "t6": "p8"}

_PREFIX = re.compile(r"^eeg[\s:_\-]+", re.IGNORECASE)
_REF_SUFFIX = re.compile(
    r"[\s_\-/](ref|le|re|ar|avg|ave|car|a1|a2|m1|m2|a1a2|m1m2|linked|mastoids?)$", re.IGNORECASE
)


def channel_key(name: str) -> str:
    """The key under which two spellings of one electrode compare equal.

    Parameters
    ----------
    name : str
        A channel label (``"C3"``, ``"C3.."``, ``"EEG C3-REF"``, ``"T3"``...).

    Returns
    -------
    key : str
        Lower case, without EEGMMIDB's trailing dots, an ``EEG`` prefix or a reference suffix,
        old 10-20 temporal names mapped to the 10-10 ones (``"T3"`` -> ``"t7"``).
    """
    s = unicodedata.normalize("NFKC", str(name)).strip().rstrip(".").strip()
    s = _PREFIX.sub("", s)
    s = _REF_SUFFIX.sub("", s).rstrip(".").strip().lower()
    return ALIASES.get(s, s)


@dataclasses.dataclass(frozen=True)
class ChannelMatch:
    """Where each model channel is in a stream.

    Attributes
    ----------
    picks : tuple of int
        Stream index of each found model channel, in model order.
    pairs : tuple of (str, str)
        (model name, stream name) of each found channel.
    missing : tuple of str
        Model channels not found.
    unused : tuple of str
        Stream channels no model channel uses.
    """

    picks: tuple[int, ...]
    pairs: tuple[tuple[str, str], ...]
    missing: tuple[str, ...]
    unused: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.missing

    def summary(self) -> str:
        """One line: how many matched, how, and what is missing."""
        n = len(self.pairs) + len(self.missing)
        renamed = [(m, s) for m, s in self.pairs if m != s]
        text = f"{len(self.pairs)} of {n} model channels found"
        if renamed:
            shown = ", ".join(f"{m}={s}" for m, s in renamed[:6])
            text += f" ({len(renamed)} under another spelling: {shown}{' ...' if len(renamed) > 6 else ''})"
        if self.missing:
            text += f"; missing: {', '.join(self.missing)}"
        if self.unused:
            text += f"; {len(self.unused)} stream channel(s) unused"
        return text


def match_channels(
    model: Sequence[str], stream: Sequence[str], mapping: Mapping[str, str] | None = None
) -> ChannelMatch:
    """Find each model channel among the stream's channels.

    Parameters
    ----------
    model, stream : sequence of str
        Channel names.
    mapping : dict of str to str, optional
        Model channel -> stream channel for channels named differently (``{"C3": "EEG 5"}``).

    Returns
    -------
    match : ChannelMatch
    """
    exact = {str(n): i for i, n in reversed(list(enumerate(stream)))}
    by_key: dict[str, int] = {}
    for i, n in enumerate(stream):
        by_key.setdefault(channel_key(n), i)
    mapping = {channel_key(k): v for k, v in (mapping or {}).items()}
    picks, pairs, missing = [], [], []
    for ch in model:
        target = mapping.get(channel_key(ch), ch)
        idx = exact.get(str(target))
        if idx is None:
            idx = by_key.get(channel_key(target))
        if idx is None:
            missing.append(str(ch) if target == ch else f"{ch} (mapped to {target!r})")
        else:
            picks.append(idx)
            pairs.append((str(ch), str(stream[idx])))
    used = set(picks)
    unused = tuple(str(n) for i, n in enumerate(stream) if i not in used)
    return ChannelMatch(tuple(picks), tuple(pairs), tuple(missing), unused)
