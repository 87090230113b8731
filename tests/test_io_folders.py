"""scan_folder and scan_csv: listing labelled image files."""

from __future__ import annotations

from pathlib import Path

import pytest

from digitrec.errors import DataFileError, DataNotFoundError, InvalidInputError
from digitrec.io import scan_csv, scan_folder


def touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def test_scan_folder_sorts_classes_and_files(tmp_path: Path) -> None:
    touch(
        tmp_path,
        "seven/b.png",
        "seven/a.png",
        "one/x/deep.jpg",
        "one/c.npy",
        "one/.DS_Store",
        "one/readme.txt",
        ".cache/z.png",
        "stray.png",
    )
    paths, labels, class_names = scan_folder(tmp_path)
    assert class_names == ["one", "seven"]
    assert [path.relative_to(tmp_path).as_posix() for path in paths] == [
        "one/c.npy",
        "one/x/deep.jpg",
        "seven/a.png",
        "seven/b.png",
    ]
    assert labels == [0, 0, 1, 1]


def test_scan_folder_refuses_empty_classes(tmp_path: Path) -> None:
    touch(tmp_path, "cat/1.png", "dog/notes.txt", "bird/.hidden.png")
    with pytest.raises(DataFileError, match="hold no image files: bird, dog"):
        scan_folder(tmp_path)


def test_scan_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="nowhere"):
        scan_folder(tmp_path / "nowhere")
    touch(tmp_path, "flat.png")
    with pytest.raises(DataFileError, match="no class folders"):
        scan_folder(tmp_path)
    with pytest.raises(DataFileError, match="is a file"):
        scan_folder(tmp_path / "flat.png")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_scan_csv_with_names(tmp_path: Path) -> None:
    table = write(tmp_path / "labels.csv", "file,label\nimg/b.png,dog\n/abs/a.png,cat\nc.png,dog\n")
    paths, labels, class_names = scan_csv(table)
    assert paths == [tmp_path / "img/b.png", Path("/abs/a.png"), tmp_path / "c.png"]
    assert labels == [1, 0, 1]
    assert class_names == ["cat", "dog"]


def test_scan_csv_with_integers_splits_and_custom_columns(tmp_path: Path) -> None:
    table = write(
        tmp_path / "t.csv",
        "\ufeffpath,digit,fold\na.png,3,train\nb.png,0,test\nc.png,1,train\n",
    )
    train = scan_csv(
        table, file_column="path", label_column="digit", split_column="fold", split="train"
    )
    assert [path.name for path in train.paths] == ["a.png", "c.png"]
    assert train.labels == [3, 1]
    # Class names come from every row, so both splits number the classes alike.
    assert train.class_names == ["0", "1", "2", "3"]
    test = scan_csv(
        table, file_column="path", label_column="digit", split_column="fold", split="test"
    )
    assert test.labels == [0]
    assert test.class_names == train.class_names
    with pytest.raises(
        DataFileError, match=r"no row with fold='val'; its splits are \['test', 'train'\]"
    ):
        scan_csv(table, file_column="path", label_column="digit", split_column="fold", split="val")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,label\na.png,1\n", r"no column 'file'; its header row has \['name', 'label'\]"),
        ("file,label\na.png,1\nb.png,\n", r"line 3: the 'label' column is empty"),
        ("file,label\na.png,1\nb.png\n", r"line 3: the 'label' column is empty"),
        ("file,label\n,1\n", r"line 2: the 'file' column is empty"),
        ("file,label\na.png,2\nb.png,-1\n", r"line 3: labels must be >= 0, got -1"),
        ("file,label\n", "no data rows"),
        ("", "no column"),
    ],
)
def test_scan_csv_bad_rows(tmp_path: Path, text: str, message: str) -> None:
    table = write(tmp_path / "bad.csv", text)
    with pytest.raises(DataFileError, match=message):
        scan_csv(table)


def test_scan_csv_errors(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match=r"none\.csv"):
        scan_csv(tmp_path / "none.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"file,label\n\xff\xfe\x00,1\n")
    with pytest.raises(DataFileError, match="not a readable UTF-8 CSV"):
        scan_csv(binary)
    with pytest.raises(InvalidInputError, match="split_column and split go together"):
        scan_csv(binary, split="train")
