"""`marketflow download` against a loopback Binance Vision archive (http.server on 127.0.0.1) serving the
bundled daily zips and their real CHECKSUMs: good files, a corrupted one, a missing checksum, a 404
day, a cut download, a monthly file, resume, and REST klines for days not archived yet."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.cli.download import cmd_download
from shared.data import read_klines
from shared.samples import btcusdt_1m_paths
from tests.binance_loopback import kline_rows

DAILY = "/data/spot/daily/klines/BTCUSDT/1m/"


class Archive:
    """Path -> bytes; `cut` paths send half their body under the full Content-Length."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: set[str] = set()
        self.requests: list[str] = []
        self.rows = kline_rows()

    def add_bundled(self) -> None:
        for p in btcusdt_1m_paths():
            self.files[DAILY + p.name] = p.read_bytes()
            self.files[DAILY + p.name + ".CHECKSUM"] = p.with_name(p.name + ".CHECKSUM").read_bytes()


@pytest.fixture()
def archive() -> Iterator[tuple[Archive, str]]:
    state = Archive()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            state.requests.append(self.path)
            parts = urlsplit(self.path)
            if parts.path == "/api/v3/klines":
                q = {k: v[0] for k, v in parse_qs(parts.query).items()}
                start, end, limit = int(q["startTime"]), int(q["endTime"]), int(q["limit"])
                rows = [[int(r[0]), *r[1:6], int(r[6]), r[7], int(r[8]), *r[9:]] for r in state.rows
                        if start <= int(r[0]) <= end][:limit]
                body = json.dumps(rows).encode()
            elif parts.path in state.files:
                body = state.files[parts.path]
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if parts.path in state.cut:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run(url: str, out: Path, start: str, end: str, today: date = date(2024, 6, 1), rest: bool = False) -> int:
    args = argparse.Namespace(symbols="BTCUSDT", interval="1m", start=start, end=end, out=str(out), trades=False,
                              base_url=url, rest_url=url if rest else "none")
    return cmd_download(args, today=today)


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir())


def test_good_files_are_verified_kept_and_skipped_on_resume(archive: tuple[Archive, str], tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    state, url = archive
    state.add_bundled()
    out = tmp_path / "hist"
    assert run(url, out, "2020-01-01", "2020-01-03") == 0
    for p in btcusdt_1m_paths():
        assert (out / p.name).read_bytes() == p.read_bytes()
    assert "3 downloaded, 0 already verified" in capsys.readouterr().out
    assert len(read_klines(sorted(out.glob("BTCUSDT-1m-*.zip")))) == 4320  # what replay reads
    state.requests.clear()
    assert run(url, out, "2020-01-01", "2020-01-03") == 0
    assert state.requests == []  # nothing fetched again
    assert "0 downloaded, 3 already verified" in capsys.readouterr().out


def test_bad_checksum_missing_checksum_404_and_cut_are_one_line_each_and_leave_nothing(
        archive: tuple[Archive, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state, url = archive
    state.add_bundled()
    day1, day2, day3 = (p.name for p in btcusdt_1m_paths())
    state.files[DAILY + day1] = state.files[DAILY + day1][:-10] + b"corrupted!"
    del state.files[DAILY + day2 + ".CHECKSUM"]
    state.cut.add(DAILY + day3)
    out = tmp_path / "hist"
    assert run(url, out, "2020-01-01", "2020-01-04") == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("download:")]
    assert len(err) == 4
    assert "2020-01-01" in err[0] and "bad checksum" in err[0]
    assert "2020-01-02" in err[1] and "no .CHECKSUM" in err[1]
    assert "2020-01-03" in err[2] and "was cut" in err[2]
    assert "2020-01-04" in err[3] and "not in the archive (HTTP 404)" in err[3]
    assert leftovers(out) == []  # nothing corrupt, partial or unverifiable is left

    # the archive repaired, the same command resumes: everything verified now
    state.add_bundled()
    state.cut.clear()
    assert run(url, out, "2020-01-01", "2020-01-03") == 0
    assert leftovers(out) == sorted([n for p in btcusdt_1m_paths() for n in (p.name, p.name + ".CHECKSUM")])


def test_a_file_changed_on_disk_is_redone(archive: tuple[Archive, str], tmp_path: Path) -> None:
    state, url = archive
    state.add_bundled()
    out = tmp_path / "hist"
    assert run(url, out, "2020-01-01", "2020-01-01") == 0
    name = btcusdt_1m_paths()[0].name
    (out / name).write_bytes(b"truncated")
    (out / (name + ".part")).write_bytes(b"a partial download from an earlier run")
    assert run(url, out, "2020-01-01", "2020-01-01") == 0
    assert (out / name).read_bytes() == btcusdt_1m_paths()[0].read_bytes()
    assert not (out / (name + ".part")).exists()


def test_a_finished_month_is_one_monthly_file(archive: tuple[Archive, str], tmp_path: Path) -> None:
    state, url = archive
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("BTCUSDT-1m-2020-01.csv", "".join(",".join(r) + "\n" for r in state.rows))
    body = buf.getvalue()
    path = "/data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2020-01.zip"
    state.files[path] = body
    state.files[path + ".CHECKSUM"] = f"{hashlib.sha256(body).hexdigest()}  BTCUSDT-1m-2020-01.zip\n".encode()
    out = tmp_path / "hist"
    assert run(url, out, "2020-01-01", "2020-01-31") == 0
    assert [r for r in state.requests if r.endswith(".zip")] == [path]
    assert len(read_klines([out / "BTCUSDT-1m-2020-01.zip"])) == 4320


def test_days_not_archived_yet_come_from_rest(archive: tuple[Archive, str], tmp_path: Path) -> None:
    state, url = archive
    state.add_bundled()
    del state.files[DAILY + "BTCUSDT-1m-2020-01-03.zip"], state.files[DAILY + "BTCUSDT-1m-2020-01-03.zip.CHECKSUM"]
    out = tmp_path / "hist"
    assert run(url, out, "2020-01-02", "2020-01-04", today=date(2020, 1, 4), rest=True) == 0
    rest_file = out / "BTCUSDT-1m-2020-01-03.csv"
    assert rest_file.read_text().splitlines() == [",".join(r) for r in state.rows[2880:]]
    series = read_klines([out / "BTCUSDT-1m-2020-01-02.zip", rest_file])
    assert len(series) == 2880 and series.quality.ok
    # once the archive has the day, the REST stand-in gives way to the verified file
    state.add_bundled()
    assert run(url, out, "2020-01-02", "2020-01-03", today=date(2020, 1, 5), rest=True) == 0
    assert not rest_file.exists() and (out / "BTCUSDT-1m-2020-01-03.zip").exists()


def test_bad_dates_are_one_clear_error() -> None:
    from shared.cli import main

    assert main(["download", "--symbols", "BTCUSDT", "--from", "2024-13-01", "--to", "2024-01-02",
                 "--out", "x"]) == 2
    assert main(["download", "--symbols", "BTCUSDT", "--from", "2024-01-05", "--to", "2024-01-02",
                 "--out", "x"]) == 2
