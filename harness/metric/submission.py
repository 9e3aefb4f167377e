"""The competition's submission CSV: ``image_name,class,rle``, 29 rows per image.

Writing is atomic (``harness.atomic``: a temp file in the same folder, then a rename)
so an interrupted ``harness predict`` never leaves a truncated file that looks complete.
Reading checks the table's shape and names the file and row of the first problem;
the RLE text itself is checked when it is decoded (``harness.metric.evaluate``).  Image
names are only ever matched against the dataset, never joined into paths, and any
name that could walk a path is refused outright.
"""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Iterable
from pathlib import Path

from harness.atomic import atomic_write_text
from harness.classes import CLASS_INDEX, CLASSES, NUM_CLASSES
from harness.errors import HarnessError

HEADER = ("image_name", "class", "rle")

# An RLE of a noisy 2048² mask can be megabytes; csv's default field limit is 128 KiB.
_FIELD_LIMIT = 2**31 - 1


def write_submission(path: Path, rows: Iterable[tuple[str, str, str]]) -> None:
    """Write ``HEADER`` and ``rows`` to ``path`` atomically (the caller orders the rows)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    atomic_write_text(Path(path), buffer.getvalue())


def _class_hint(name: str) -> str:
    near = difflib.get_close_matches(name, CLASSES, n=3, cutoff=0.6)
    return f"did you mean {', '.join(repr(n) for n in near)}?" if near else "see harness.classes"


def read_submission(path: Path) -> dict[str, dict[str, str]]:
    """``image_name -> class -> rle``, classes in ``CLASSES`` order; malformed: ``HarnessError``."""
    return read_submission_rows(path)[0]


def read_submission_rows(
    path: Path,
) -> tuple[dict[str, dict[str, str]], dict[tuple[str, str], int]]:
    """``read_submission`` and the CSV line of each ``(image_name, class)`` row, for errors."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"{path}: submission file not found; pass --submission PATH to a CSV")
    if csv.field_size_limit() < _FIELD_LIMIT:
        csv.field_size_limit(_FIELD_LIMIT)
    out: dict[str, dict[str, str]] = {}
    first_row: dict[str, int] = {}
    line_of: dict[tuple[str, str], int] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or tuple(h.strip() for h in header) != HEADER:
                found = repr(",".join(header)[:80]) if header else "an empty file or line"
                raise HarnessError(
                    f"{path}: row 1: header must be {','.join(HEADER)}, found {found}"
                )
            for row in reader:
                n = reader.line_num
                if not row:
                    continue  # a blank line
                if len(row) != len(HEADER):
                    raise HarnessError(
                        f"{path}: row {n}: expected {len(HEADER)} columns "
                        f"({','.join(HEADER)}), found {len(row)}"
                    )
                image, cls, rle = row[0].strip(), row[1].strip(), row[2]
                if not image or "/" in image or "\\" in image or ".." in image:
                    raise HarnessError(
                        f"{path}: row {n}: image_name {image!r} must be a plain file name "
                        "(no path separators or '..'), e.g. image1661130828152.png"
                    )
                if cls not in CLASS_INDEX:
                    raise HarnessError(
                        f"{path}: row {n}: unknown class {cls!r}; {_class_hint(cls)}"
                    )
                classes = out.setdefault(image, {})
                first_row.setdefault(image, n)
                if cls in classes:
                    raise HarnessError(
                        f"{path}: row {n}: duplicate row for image {image!r}, class {cls!r}"
                    )
                classes[cls] = rle
                line_of[image, cls] = n
    except csv.Error as exc:
        raise HarnessError(f"{path}: row {reader.line_num}: not valid CSV ({exc})") from None
    except UnicodeDecodeError:
        raise HarnessError(f"{path}: not UTF-8 text; save the submission as UTF-8 CSV") from None

    for image, classes in out.items():
        if len(classes) != NUM_CLASSES:
            missing = next(c for c in CLASSES if c not in classes)
            raise HarnessError(
                f"{path}: image {image!r} (first at row {first_row[image]}) has "
                f"{len(classes)} of {NUM_CLASSES} class rows; first missing: {missing!r}"
            )
        out[image] = {c: classes[c] for c in CLASSES}
    return out, line_of
