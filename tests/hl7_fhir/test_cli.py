"""The ``hl7fhir`` command line: parse, validate, generate, and send/listen over real sockets."""

from __future__ import annotations

import asyncio
import io
import json
import re
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hl7_fhir import v2
from hl7_fhir.cli import main
from hl7_fhir.mllp import ConnectionInfo, MLLPServer

from tests.corpus import CORPUS
from tests.pki import Pki

RADIOLOGY = CORPUS / "radiology"
BROKEN = CORPUS / "trusted-intermediary" / "examples" / "Test" / "Message"
ORDER = RADIOLOGY / "orm_o01_v25_new_order.hl7"
TEXT_REPORT = RADIOLOGY / "oru_r01_v23_text_report.hl7"
BATCH = RADIOLOGY / "batch_fhs_bhs_three_messages.hl7"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hl7fhir: error: "), err
    assert "Traceback" not in err


# -- parse --------------------------------------------------------------------------------


def test_parse_shows_field_and_component_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "parse", str(ORDER))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "ORM^O01^ORM_O01 MSG00001 v2.5 (5 segments)"
    assert "  PID-5 Patient Name: Doe^John^A" in lines
    assert "    PID-5.1 Family Name: Doe" in lines
    assert "  PID-13[2] Phone Number Home: 0412345678^PRN^CP" in lines
    assert "  MSH-10 Message Control ID: MSG00001" in lines


def test_parse_unescapes_values(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "parse", str(TEXT_REPORT))
    assert code == 0
    assert "OBX-5 Observation Value: Normal study with no significant findings.\\r\\nLungs" in out
    assert "nodule RUL & follow-up" in out


def test_parse_batch_numbers_the_messages(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "parse", str(BATCH))
    assert code == 0
    assert [line for line in out.splitlines() if line.startswith("Message ")] == [
        "Message 1: ORM^O01^ORM_O01 BATCH0-1 v2.5 (5 segments)",
        "Message 2: ADT^A08^ADT_A01 BATCH1-3 v2.5 (4 segments)",
        "Message 3: ORU^R01^ORU_R01 BATCH2-2 v2.5 (6 segments)",
    ]


def test_parse_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "parse", str(BATCH), "--json")
    assert code == 0
    data = json.loads(out)
    assert [m["control_id"] for m in data] == ["BATCH0-1", "BATCH1-3", "BATCH2-2"]
    pid = data[0]["segments"][1]
    assert pid["name"] == "PID"
    assert pid["fields"][2] == [["P001", "", "", "AXIS", "MR"]]  # PID-3
    assert pid["fields"][1] == []  # PID-2 empty
    assert data[0]["segments"][0]["fields"][:2] == [[["|"]], [["^~\\&"]]]


def test_parse_reads_standard_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(ORDER.read_bytes()))
    monkeypatch.setattr(sys, "stdin", stdin)
    code, out, _ = run(capsys, "parse", "-", "--json")
    assert code == 0
    assert json.loads(out)[0]["control_id"] == "MSG00001"


def test_parse_errors_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "parse", str(tmp_path / "missing.hl7"))
    assert code == 2
    assert_one_line_error(err)
    assert "no such file" in err

    code, _, err = run(capsys, "parse", str(tmp_path))
    assert code == 2
    assert_one_line_error(err)

    junk = tmp_path / "junk.hl7"
    junk.write_text("hello, world\n")
    code, _, err = run(capsys, "parse", str(junk))
    assert code == 1
    assert_one_line_error(err)
    assert "junk.hl7" in err and "segment 1" in err

    code, _, err = run(capsys, "parse", str(BROKEN / "empty.hl7"))
    assert code == 1
    assert_one_line_error(err)


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys)
    assert code == 2 and "hl7fhir: error:" in err
    code, _, err = run(capsys, "send", str(ORDER))  # --port is required
    assert code == 2 and "--port" in err
    code, _, err = run(capsys, "send", str(ORDER), "--port", "70000")
    assert code == 2 and "port out of range" in err
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "validate" in out


# -- validate ------------------------------------------------------------------------------


def test_validate_radiology_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", str(RADIOLOGY))
    assert code == 0
    assert "orm_o01_v25_new_order.hl7: ORM^O01^ORM_O01 MSG00001 v2.5: 0 error(s)" in out
    assert "batch_fhs_bhs_three_messages.hl7 #3: ORU^R01^ORU_R01 BATCH2-2" in out


def test_validate_reports_locations_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(BROKEN / f"msh_present_but_missing_msh-{n}.hl7") for n in (9, 10)]
    code, out, _ = run(capsys, "validate", *files, str(BROKEN / "empty.hl7"))
    assert code == 1
    assert re.search(r"ERROR\s+MSH-9\s+101\s+required field MSH-9 Message Type is missing", out)
    assert re.search(r"ERROR\s+MSH-10\s+101\s+required field MSH-10 Message Control ID", out)
    assert "empty.hl7: ERROR no HL7 message found" in out


def test_validate_json_strict_and_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    siu = str(RADIOLOGY / "siu_s12_v25_book.hl7")
    code, out, _ = run(capsys, "validate", siu, "--json")
    assert code == 0
    (report,) = json.loads(out)
    assert report["ok"] is True and report["warnings"] == 3
    code, out, _ = run(capsys, "validate", siu, "--strict", "--errors-only")
    assert code == 1
    assert "WARNING" not in out and "SCH-20 Entered by Person" in out
    code, out, _ = run(capsys, "validate", str(RADIOLOGY), "--quiet")
    assert code == 0 and out == ""


# -- generate -----------------------------------------------------------------------------


def test_generate_writes_messages_parse_batch_reads_back(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "out.hl7"
    kinds = "orm,oru,adt_a01,adt_a04,adt_a08,adt_a40,siu"
    code, _, err = run(
        capsys, "generate", "--types", kinds, "--count", "14", "--seed", "7", "-o", str(target)
    )
    assert code == 0 and "wrote 14 message(s)" in err
    data = target.read_bytes()
    assert data.count(b"\rMSH|") == 0  # a message ends with CR then LF
    assert data.count(b"\r\nMSH|") == 13 and data.endswith(b"\r\n")
    messages = v2.parse_batch(data)
    assert len(messages) == 14
    assert {m.message_type for m in messages} == {"ORM", "ORU", "ADT", "SIU"}
    again = tmp_path / "again.hl7"
    assert (
        main(["generate", "--types", kinds, "--count", "14", "--seed", "7", "-o", str(again)]) == 0
    )
    assert again.read_bytes() == data  # the seed makes it reproducible
    code, out, _ = run(capsys, "validate", str(target), "--quiet")
    assert code == 0, out


def test_generate_to_stdout_with_lf(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["generate", "--types", "adt_a08", "--count", "2", "--seed", "1", "--lf"]) == 0
    out = capsysbinary.readouterr().out
    assert b"\r" not in out
    assert out.count(b"\n\nMSH|") == 1
    assert len(v2.parse_batch(out)) == 2


def test_generate_all_and_bad_types(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, _ = run(
        capsys, "generate", "--types", "all", "--count", "13", "-o", str(tmp_path / "a.hl7")
    )
    assert code == 0
    code, _, err = run(capsys, "generate", "--types", "orm,nope")
    assert code == 2
    assert_one_line_error(err)
    assert "nope" in err
    code, _, err = run(capsys, "generate", "--types", "orm", "--version", "9.9")
    assert code == 2
    assert_one_line_error(err)


# -- send and listen over real sockets ----------------------------------------------------


@dataclass
class Listener:
    process: subprocess.Popen[str]
    port: int

    def stop(self) -> tuple[str, str]:
        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=15)
        return out, err


def _start_listener(*extra: str) -> Listener:
    process = subprocess.Popen(
        [sys.executable, "-m", "hl7_fhir.cli", "listen", "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stderr, selectors.EVENT_READ)
    try:
        if not selector.select(timeout=20):
            process.kill()
            raise AssertionError("the listener did not start within 20 s")
        line = process.stderr.readline()
    finally:
        selector.close()
    match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    if match is None:
        process.kill()
        raise AssertionError(f"unexpected first line from the listener: {line!r}")
    return Listener(process, int(match.group(1)))


@pytest.fixture
def listener() -> Iterator[Listener]:
    started = _start_listener()
    yield started
    if started.process.poll() is None:
        started.process.kill()
        started.process.communicate()


def test_send_to_listen_end_to_end(capsys: pytest.CaptureFixture[str], listener: Listener) -> None:
    code, out, err = run(capsys, "send", str(RADIOLOGY), "--port", str(listener.port))
    assert code == 0, out + err
    acks = dict(line.split(" -> ") for line in out.splitlines())
    assert len(acks) == 15  # 13 files, one a batch of three
    assert acks["MSG00001"] == "AA"
    assert acks["NS-0099"] == "CA"  # enhanced mode asked for in MSH-15/16
    assert set(acks.values()) == {"AA", "CA"}
    assert err.strip().endswith("15 acknowledged (14 AA, 1 CA)")

    received, stopped = listener.stop()
    assert listener.process.returncode == 0
    assert "stopped" in stopped and "Traceback" not in stopped
    lines = received.splitlines()
    assert len(lines) == 15
    line = next(line for line in lines if " MSG00001 " in line)
    assert re.fullmatch(r"\S+ 127\.0\.0\.1:\d+ ORM\^O01 MSG00001 5 segments", line), line


def test_send_many_prints_only_a_summary_off_a_terminal(
    capsys: pytest.CaptureFixture[str], listener: Listener, tmp_path: Path
) -> None:
    batch = tmp_path / "many.hl7"
    assert (
        main(["generate", "--types", "orm,oru", "--count", "25", "--seed", "3", "-o", str(batch)])
        == 0
    )
    capsys.readouterr()
    code, out, err = run(capsys, "send", str(batch), "--port", str(listener.port))
    assert code == 0
    assert out == ""  # every ACK was AA: nothing to list
    assert err.strip().splitlines() == [f"127.0.0.1:{listener.port}: 25 acknowledged (25 AA)"]
    received, _ = listener.stop()
    assert len(received.splitlines()) == 25


def test_listen_validate_answers_ae(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    started = _start_listener("--validate")
    try:
        bad = BROKEN / "orm_obx-5_is_not_a_numeric_value.hl7"
        code, out, _ = run(capsys, "send", str(bad), str(ORDER), "--port", str(started.port))
        assert code == 1
        assert "111111 -> AE" in out
        assert "MSG00001 -> AA" in out
        received, _ = started.stop()
        assert "111111" in received and "error(s)" in received
    finally:
        if started.process.poll() is None:
            started.process.kill()
            started.process.communicate()


async def test_send_exits_non_zero_on_a_negative_ack(capsys: pytest.CaptureFixture[str]) -> None:
    async def refuse(message: bytes, info: ConnectionInfo) -> v2.Message:
        return v2.build_ack(message, "AE", text="we do not take orders on Sundays")

    async with MLLPServer(refuse, "127.0.0.1", 0) as server:
        code = await asyncio.to_thread(main, ["send", str(ORDER), "--port", str(server.port)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "MSG00001 -> AE (we do not take orders on Sundays)" in out
    assert "1 acknowledged (1 AE)" in err


async def test_send_to_nobody_fails_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    async def accept(message: bytes, info: ConnectionInfo) -> None:
        return None

    server = MLLPServer(accept, "127.0.0.1", 0)
    await server.start()
    port = server.port
    await server.close()  # the port is free again: nothing listens there
    code = await asyncio.to_thread(
        main, ["send", str(BATCH), "--port", str(port), "--timeout", "2"]
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert "BATCH0-1 -> not sent" in out
    assert "1 failed, 2 not sent" in err
    assert "Traceback" not in out + err


def test_send_and_listen_over_tls(capsys: pytest.CaptureFixture[str], pki: Pki) -> None:
    started = _start_listener("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key))
    try:
        code, out, err = run(
            capsys, "send", str(ORDER), "--port", str(started.port), "--tls", "--ca", str(pki.ca)
        )
        assert code == 0, err
        assert out == "MSG00001 -> AA\n"
        received, _ = started.stop()
        assert " MSG00001 5 segments" in received
    finally:
        if started.process.poll() is None:
            started.process.kill()
            started.process.communicate()


def test_send_tls_setup_errors_are_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(
        capsys, "send", str(ORDER), "--port", "1", "--tls", "--ca", str(tmp_path / "none.pem")
    )
    assert code == 2
    assert_one_line_error(err)
    assert "TLS setup failed" in err
