"""Uploaded corpora, unpacked safely (app/corpora.py), and what each bundled model indexes."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import model
from app.corpora import CorpusError, heldout, is_binary, read_upload

DYCK = model.load("dyck")
CODE = model.load("code")
ADDING = model.load("adding-lstm")
LIMITS = {"max_bytes": 1 << 20, "max_files": 20, "per": "file", "carry": False}


def _zip(path: Path, members: dict[str, bytes], compress: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compress) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _read(tmp_path: Path, path: Path, net=CODE, **kw):
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return read_upload(path, path.name, work, net, **{**LIMITS, **kw})


def test_a_zip_is_unpacked_inside_its_folder_only_and_binary_members_are_skipped_by_name(tmp_path):
    z = _zip(
        tmp_path / "c.zip",
        {
            "a.py": b"x = 1\n",
            "../../escape.py": b"y = 2\n",
            "/abs/root.py": b"z = 3\n",
            "sub/./b.py": b"def f():\n    pass\n",
            "img.png": b"\x89PNG\r\n\x1a\n\0\0\0",
            "__MACOSX/._a.py": b"\0\0junk",
        },
    )
    c = _read(tmp_path, z)
    folder = tmp_path / "work" / "corpus"
    written = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert written == ["a.py", "abs/root.py", "escape.py", "sub/b.py"]  # '..' and '/' dropped, inside the folder
    assert not (tmp_path / "escape.py").exists() and not Path("/abs/root.py").exists()
    assert c.notes == ["skipped 1 binary file: img.png"]
    assert c.sources == [str(folder)] and c.size == sum((folder / w).stat().st_size for w in written)


def test_a_zip_bomb_is_refused_by_its_declared_size_before_anything_is_written(tmp_path):
    z = _zip(tmp_path / "bomb.zip", {"a.txt": b"a" * (3 << 20)})  # 3 MB of 'a' deflate to a few KB
    assert z.stat().st_size < 64 << 10
    with pytest.raises(CorpusError) as e:
        _read(tmp_path, z)
    assert e.value.status == 413 and "unpacks to 3 MB" in str(e.value) and "at most 1 MB" in str(e.value)
    assert not any((tmp_path / "work" / "corpus").rglob("*.txt"))


def test_a_zip_whose_directory_understates_a_size_is_stopped_as_it_unpacks(tmp_path):
    z = _zip(tmp_path / "liar.zip", {"a.txt": b"a" * (3 << 20)})
    data = bytearray(z.read_bytes())
    # the central directory's uncompressed size of the member (offset 24 of its record) says 10 bytes
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (10).to_bytes(4, "little")
    z.write_bytes(bytes(data))
    with pytest.raises(CorpusError) as e:
        _read(tmp_path, z)
    assert e.value.status == 422 and "damaged" in str(e.value)  # zipfile stops at the declared size, then the CRC
    assert sum(f.stat().st_size for f in (tmp_path / "work").rglob("*.txt")) <= 10  # never more than declared


def test_a_zip_of_too_many_files_is_refused(tmp_path):
    z = _zip(tmp_path / "many.zip", {f"f{i}.txt": b"x" for i in range(21)})
    with pytest.raises(CorpusError) as e:
        _read(tmp_path, z)
    assert e.value.status == 413 and "21 files" in str(e.value) and "at most 20" in str(e.value)


@pytest.mark.parametrize(
    ("name", "data", "net", "status", "words"),
    [
        ("empty.txt", b"", CODE, 422, "empty"),
        ("pic.txt", b"\x89PNG\r\n\x1a\n\0\0\0\0IHDR", CODE, 415, "not UTF-8 text"),
        ("notzip.zip", b"PK but not a zip", CODE, 415, "not a readable zip"),
        ("bad.jsonl", b"not json\n", CODE, 422, "first line is not JSON"),
        ("nofield.jsonl", b'{"body": "x"}\n', CODE, 422, "'text' string"),
        ("words.txt", b"hello", DYCK, 422, "words.txt:"),  # dyck reads only ( ) $: the tokenizer names the token
        ("series.txt", b"1,2\n3,4\n", ADDING, 415, "reads vectors"),
        ("x.npy", b"\x93NUMPY", CODE, 415, "reads text"),
    ],
)
def test_a_corpus_that_cannot_be_indexed_is_refused_saying_why(tmp_path, name, data, net, status, words):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(CorpusError) as e:
        _read(tmp_path, p, net=net)
    assert e.value.status == status and words in str(e.value), str(e.value)


def test_a_zip_with_only_binary_files_is_refused_naming_them(tmp_path):
    z = _zip(tmp_path / "bin.zip", {"a.bin": b"\0\1\2", "b.bin": b"\xff\xfe\0"})
    with pytest.raises(CorpusError) as e:
        _read(tmp_path, z)
    assert e.value.status == 422 and "holds no text files" in str(e.value) and "a.bin, b.bin" in str(e.value)


def test_text_and_json_lines_corpora_are_taken_as_they_are(tmp_path):
    t = tmp_path / "doc.txt"
    t.write_text("def f(x):\n    return x\n")
    c = _read(tmp_path, t)
    assert (c.sources, c.per, c.size) == ([str(t)], "file", t.stat().st_size)
    j = tmp_path / "rows.jsonl"
    j.write_text("\n".join(json.dumps({"text": s}) for s in ["()$", "(())$"]) + "\n")
    c = _read(tmp_path, j, net=DYCK)
    assert c.sources == [str(j)]
    s = tmp_path / "s.npy"
    buf = io.BytesIO()
    np.save(buf, np.zeros((5, 2), np.float32))
    s.write_bytes(buf.getvalue())
    assert _read(tmp_path, s, net=ADDING).sources == [str(s)]


def test_utf8_cut_at_the_sniff_boundary_is_still_text():
    text = ("é" * 5000).encode()  # 2 bytes each: the 8,192-byte sniff may end inside one
    assert not is_binary(text[:8191]) and is_binary(b"ok\xff\xfe more text here")


def _card(name: str) -> dict:
    return json.loads((model.PRETRAINED / name / "card.json").read_text())


def test_each_bundled_model_indexes_its_held_out_data():
    dyck = heldout("dyck", _card("dyck"), 1_000_000)
    assert len(dyck.sources) == 500 and all(s.endswith("$") for s in dyck.sources) and not dyck.carry
    assert max(map(len, dyck.sources)) > 50  # half of them longer than training's 50
    recall = heldout("recall-lstm", _card("recall-lstm"), 1_000_000)
    assert len(recall.sources) == 2000 and recall.sources[0][-2] == "?"
    code = heldout("code", _card("code"), 200_000)
    assert code.carry and code.per == "file" and 0 < code.size <= 200_000
    assert all(
        model.tasks.is_heldout(Path(p).relative_to(model.tasks.sysconfig.get_paths()["stdlib"]).as_posix())
        for p in code.sources
    )
    co2 = heldout("co2-lstm", _card("co2-lstm"), 1_000_000)
    assert len(co2.sources) == 1 and co2.sources[0].shape == (2284, 1)  # the whole series, one document
    adding = heldout("adding-lstm", _card("adding-lstm"), 1_000_000)
    assert len(adding.sources) == 1000 and adding.sources[0].shape == (30, 2)  # length 30, as it was trained
