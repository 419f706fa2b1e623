"""Datasets: image folders, built-in sets, all yielding the DataSpec/Batch contract.

`load_data("builtin:fashion-mnist", size=(32, 32))` or `load_data("path/to/cars", size=(100, 100))`
returns a `TensorData`; `Loader(data, batch_size, seed)` turns it into endless, resumable batches.
Image-to-image data: `load_data("builtin:fmnist-edges2items")`, a folder with A/ and B/ sub-folders, or
`load_data("facades/train", pairs="side-by-side")` (see translation.py and paired.py).
"""

from __future__ import annotations

from pathlib import Path

from .paired import PAIRS
from .registry import BUILTINS, builtin_names, load_builtin
from .spec import Batch, DataSpec
from .store import Loader, TensorData
from .table import (
    ColumnSpec,
    Table,
    TableData,
    TableTransformer,
    is_table_path,
    load_column_spec,
    load_table_data,
    read_table,
    transformer_from_spec,
    write_table,
)
from .table_builtins import TABLE_BUILTINS, is_table_builtin, load_table_builtin
from .table_transforms import OutputLayout, apply_activations
from .translation import as_unpaired

__all__ = ["BUILTINS", "PAIRS", "Batch", "ColumnSpec", "DataSpec", "Loader", "OutputLayout", "Table", "TableData",
           "TABLE_BUILTINS", "TableTransformer", "TensorData", "apply_activations", "as_unpaired", "builtin_names", "is_table_path",
           "is_table_builtin", "load_any_table", "load_builtin", "load_column_spec", "load_data", "load_table_data", "parse_size", "read_table",
           "transformer_from_spec", "write_table"]


def load_any_table(source: str, *, columns=None, transforms: dict | None = None, continuous: str = "standard",
                   rows: int = 0, seed: int = 0) -> TableData:
    """A table file or a built-in table, typed (columns), encoded (the built-in's default transforms, then
    `transforms`, then `continuous` for the other numeric columns) -> TableData."""
    if is_table_builtin(source):
        name = source.split(":", 1)[1]
        table, defaults = load_table_builtin(name, rows=rows, seed=seed)
        if columns is not None:
            raise ValueError(f"--columns applies to table files; builtin:{name} has its columns typed already "
                             f"(change their encoding with --set data.transforms.COLUMN=NAME)")
        merged = {**defaults, **(transforms or {})}
        return TableData.from_table(table, transforms=merged, continuous=continuous, seed=seed, name=name)
    if rows:
        raise ValueError(f"--rows sets the size of a built-in generator (builtin:eprime); '{source}' is a file: "
                         f"drop --rows")
    return load_table_data(source, columns, continuous=continuous, transforms=transforms or None, seed=seed)


def parse_size(text: str | int | tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
    """'100' -> (100, 100); '96x64' -> (96, 64) as (H, W); None stays None."""
    if text is None:
        return None
    if isinstance(text, int):
        h = w = text
    elif isinstance(text, (tuple, list)):
        if len(text) != 2:
            raise ValueError(f"size must be (H, W), got {text!r}")
        h, w = int(text[0]), int(text[1])
    else:
        parts = str(text).lower().replace("×", "x").split("x")
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"--size must be N or HxW such as 100 or 96x64, got {text!r}") from None
        if len(nums) == 1:
            h = w = nums[0]
        elif len(nums) == 2:
            h, w = nums
        else:
            raise ValueError(f"--size must be N or HxW such as 100 or 96x64, got {text!r}")
    if h < 4 or w < 4 or h > 4096 or w > 4096:
        raise ValueError(f"--size must be between 4 and 4096 pixels per side, got {h}x{w}")
    return h, w


def load_data(
    source: str,
    size: tuple[int, int] | None = None,
    channels: int | None = None,
    *,
    fit: str = "crop",
    cache_dir: str | Path | None = None,
    quiet: bool = False,
    pairs: str = "auto",
    columns: str | Path | dict | None = None,
    transforms: dict | None = None,
    continuous: str = "standard",
    rows: int = 0,
    seed: int = 0,
) -> TensorData:
    """Load `builtin:NAME`, an image folder, or a table (.csv / .tsv / .parquet: a TableData, see table.py).

    size: (H, W) to resize to (images only; None keeps a built-in's native size and is an error for
    folders of mixed sizes; for two-domain data it is domain B's size). channels: 1 (grey) or 3 (RGB);
    None keeps a built-in's own and means 3 for folders. fit: "crop" (resize the short side, centre-crop)
    or "pad" (fit inside, pad with black). pairs (folders only): "auto" reads a folder with A/ and B/
    sub-folders as image-to-image data (paired when the file names match, else unpaired) and any other
    folder as images, labelled by class sub-folders; "labels" always reads sub-folders as classes (e.g.
    StarGAN domains named A and B); "side-by-side" splits every image into A (left half) | B (right half).
    Tables only: columns, the --columns settings (a YAML path or a mapping, see table.load_column_spec);
    transforms, {column: transform} over the columns' own and the built-in's defaults; continuous, the default
    transform of numeric columns ("standard", "vgm", ...); rows and seed, a built-in generator's row count (0:
    its default) and seed (builtin:eprime; see table_builtins.py).
    """
    if pairs not in PAIRS:
        raise ValueError(f"unknown pairs '{pairs}'; choose one of: {', '.join(PAIRS)}")
    table_args = dict(columns=columns, transforms=transforms, continuous=continuous, rows=rows, seed=seed)
    if is_table_builtin(source) or is_table_path(source):
        if size is not None or channels is not None:
            raise ValueError(f"'{source}' is a table: --size and --channels apply to images; drop them")
        return load_any_table(source, **table_args)
    if columns is not None or transforms:
        what = "--columns" if columns is not None else "data.transforms"
        raise ValueError(f"{what} describes the columns of a table (.csv, .parquet, builtin:eprime); '{source}' is not one")
    if rows:
        raise ValueError(f"--rows sets the size of a built-in generated table (builtin:eprime); '{source}' is not one")
    from .shards import is_shard_source

    if is_shard_source(source):  # tar shards (`ganforge data pack`): streamed while training, see shards.py
        if pairs != "auto":
            raise ValueError(f"pairs='{pairs}' applies to image folders; shards hold single images")
        from .shards import shard_data

        return shard_data(source, size, channels or 3, fit)
    if source.startswith("builtin:"):
        if pairs != "auto":
            raise ValueError(f"pairs='{pairs}' applies to image folders; built-in sets know their own pairing")
        return load_builtin(source.split(":", 1)[1], size=size, channels=channels)
    from .images import load_image_folder
    from .paired import find_domains, load_domain_folders, load_side_by_side

    path = Path(source)
    if not path.exists():
        raise ValueError(
            f"data path '{source}' does not exist; give --data a folder of images or one of "
            + ", ".join(builtin_names())
        )
    from .audio import is_audio_folder, load_audio_folder

    if path.is_dir() and is_audio_folder(path):  # .wav/.flac/.ogg and no images: audio clips
        if size is not None or channels is not None or pairs != "auto":
            raise ValueError(f"'{source}' holds sound files: --size, --channels and pairs apply to images; drop them")
        return load_audio_folder(path, quiet=quiet)
    kwargs = dict(size=size, channels=channels or 3, fit=fit, cache_dir=cache_dir, quiet=quiet)
    if pairs == "side-by-side":
        return load_side_by_side(path, **kwargs)
    if pairs == "auto" and find_domains(path) is not None:
        return load_domain_folders(path, **kwargs)
    return load_image_folder(path, **kwargs, captions=True)
