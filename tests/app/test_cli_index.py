"""``gatescope index``: a store and a summary line for a corpus; a message and exit status 2 for a bad one."""

from __future__ import annotations

from app.cli import main
from model import Index


def test_index_a_folder_per_line(tmp_path, capsys):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.txt").write_text("(())$\n()$\n")
    out = tmp_path / "o.zarr"
    rc = main(["index", "dyck", str(tmp_path / "c"), "--per", "line", "--out", str(out), "--scheduler", "sync"])
    err = capsys.readouterr().err
    assert rc == 0
    assert "gatescope index: 2 documents, 8 steps" in err and "chars/s" in err and "documents" in err
    idx = Index.open(out)
    assert idx.info["model"] == "dyck" and [idx.text(d) for d in range(2)] == ["(())$", "()$"]


def test_bad_corpus_is_a_message_not_a_traceback(tmp_path, capsys):
    (tmp_path / "x.txt").write_text("(()\n(a)\n")
    rc = main(["index", "dyck", str(tmp_path / "x.txt"), "--per", "line", "--out", str(tmp_path / "o.zarr")])
    err = capsys.readouterr().err
    assert rc == 2 and "x.txt line 2" in err and "'a'" in err and "Traceback" not in err
    rc = main(["index", "dyck", str(tmp_path / "none*.txt"), "--out", str(tmp_path / "o.zarr")])
    assert rc == 2 and "no files matched" in capsys.readouterr().err
