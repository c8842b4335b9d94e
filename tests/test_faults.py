"""Fault injection: nothing a user gave is lost, nothing fails silently, hostile input is bounded.

Each test feeds one fault from issue 14 to a command or its Python API on tiny files: outputs
that would destroy something, a read-only folder or a full disk (simulated by patching, so the
tests also hold when run as root), SIGTERM/SIGUSR1/SIGINT during training, a YAML alias bomb,
an impossible generator selection, bad devices, and values that training would refuse.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from _dataset_helpers import TINY_SPEC, TINY_YAML, random_arrays, tiny_arrays, write_h5
from _evaluation_helpers import TTBAR_YAML, make_run_dir, write_ttbar_file
from lightning.pytorch.callbacks import Callback

from spanet_lite import io as spanet_io
from spanet_lite.cli import common as common_cli
from spanet_lite.cli import export as export_cli
from spanet_lite.cli import generate as generate_cli
from spanet_lite.cli import predict as predict_cli
from spanet_lite.cli import test as test_cli
from spanet_lite.cli import train as train_cli
from spanet_lite.cli.common import Terminated, run_cli
from spanet_lite.config import load_event_spec
from spanet_lite.config.yaml_lines import load_yaml_with_lines
from spanet_lite.dataset.datamodule import SpanetDataModule
from spanet_lite.dataset.schema import validate_file
from spanet_lite.errors import InputError, SpanetWarning
from spanet_lite.outputs import Output, check_outputs
from spanet_lite.physics.generator.acceptance import EMPTY_AFTER, AcceptanceGuard
from spanet_lite.physics.generator.config import Selection
from spanet_lite.training.interrupt import StopController
from spanet_lite.training.run import train

REPO = Path(__file__).resolve().parent.parent
TRAIN_OPTIONS = dict(
    hidden_dim=8, num_attention_heads=2, num_embedding_layers=1, num_encoder_layers=1,
    num_branch_embedding_layers=0, num_branch_encoder_layers=1, num_detector_layers=1,
    num_regression_layers=1, num_classification_layers=1, batch_size=16, epochs=2,
    train_validation_split=0.75, num_dataloader_workers=0, seed=3, learning_rate=0.003,
    partial_events=True,  # random targets: few events have every particle
)


def one_line_error(capsys: pytest.CaptureFixture[str], program: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"{program}: error: ") and err.count("\n") == 1, err
    return err


def folder_listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tiny_training(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An options file for a 4-batch-per-epoch training on 128 events of TINY_SPEC."""
    folder = tmp_path_factory.mktemp("tiny_training")
    (folder / "tiny.yaml").write_text(TINY_YAML, encoding="utf-8")
    write_h5(folder / "tiny.h5", random_arrays(128, seed=1))
    options = {"event_info_file": str(folder / "tiny.yaml"), "training_file": str(folder / "tiny.h5"),
               **TRAIN_OPTIONS}
    (folder / "options.json").write_text(json.dumps(options), encoding="utf-8")
    return folder / "options.json"


@pytest.fixture(scope="module")
def ttbar_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("ttbar_run")
    data = write_ttbar_file(folder / "events.h5", num_events=40)
    return make_run_dir(folder / "run", TTBAR_YAML, data), data


# --------------------------------------------------------------------- 1. the output rule
def test_an_existing_output_is_refused_unless_overwrite(tmp_path: Path) -> None:
    existing = tmp_path / "numbers.json"
    existing.write_text("{}")
    with pytest.raises(InputError, match=r"numbers\.json: --json: .*pass --overwrite.*an existing file"):
        check_outputs([Output(existing, "--json")])
    check_outputs([Output(existing, "--json")], overwrite=True)


def test_an_input_or_a_run_checkpoint_is_never_an_output_even_with_overwrite(
    ttbar_run: tuple[Path, Path], tmp_path: Path
) -> None:
    run_dir, data = ttbar_run
    link = tmp_path / "link.h5"
    link.symlink_to(data)
    for target in (data, link):
        with pytest.raises(InputError, match="different from the command's inputs"):
            check_outputs([Output(target, "OUT.h5")], inputs=[data], overwrite=True)
    for target in (run_dir / "checkpoints" / "last.ckpt", run_dir / "checkpoints" / "new.json",
                   run_dir / "options.json"):
        with pytest.raises(InputError, match="outside a training run's files"):
            check_outputs([Output(target, "--json")], overwrite=True)


def test_an_empty_output_path_is_named_so_by_every_command() -> None:
    from spanet_lite.outputs import output

    with pytest.raises(InputError, match=r"^OUT\.h5: expected a file path, got an empty path$"):
        output("", "OUT.h5")
    with pytest.raises(InputError, match=r"^--plots: expected a folder path, got an empty path$"):
        output("", "--plots", directory=True)


def test_a_users_folder_of_options_and_statistics_is_no_run_directory(tmp_path: Path) -> None:
    """A run is an options.json beside checkpoints/ or spanet-train's event_file.yaml; a folder
    where someone keeps options.json and saved statistics is theirs to write into."""
    (tmp_path / "options.json").write_text("{}")
    (tmp_path / "statistics.json").write_text("{}")
    check_outputs([Output(tmp_path / "statistics.json", "--json")], overwrite=True)
    check_outputs([Output(tmp_path / "plots", "--plots", directory=True)])
    (tmp_path / "event_file.yaml").write_text("")
    with pytest.raises(InputError, match="outside a training run's files"):
        check_outputs([Output(tmp_path / "statistics.json", "--json")], overwrite=True)


@pytest.mark.parametrize(("folder", "got"), [
    ("checkpoints", "got a run's checkpoints/ folder"),
    (".", "got a run directory"),
    ("checkpoints/plots", r"got a path inside a run directory \(in its checkpoints/\)"),
])
def test_a_plots_folder_is_never_a_run_directory_or_its_checkpoints_even_with_overwrite(
    ttbar_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], folder: str, got: str
) -> None:
    """The folder output itself is checked, not only the folders above it: ``--plots
    RUN/checkpoints --overwrite`` once put PNGs among the checkpoints."""
    run_dir, data = ttbar_run
    target = run_dir / folder
    with pytest.raises(InputError, match=f"expected an output outside a training run's files.*, {got}$"):
        check_outputs([Output(target, "--plots", directory=True)], overwrite=True)
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    assert test_cli.main([str(run_dir), "-tf", str(data), "--plots", str(target), "--overwrite"]) == 2
    assert "--plots: expected an output outside" in one_line_error(capsys, "spanet-test")
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before
    beside = tmp_path / "plots"  # a folder of one's own is fine, also one next to a run's options.json
    (tmp_path / "options.json").write_text("{}")
    check_outputs([Output(beside, "--plots", directory=True), Output(tmp_path / "checkpoints", "--json")])


def test_outputs_are_never_directories_and_never_coincide(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="expected a file path, got a directory"):
        check_outputs([Output(tmp_path, "OUT.h5")], overwrite=True)
    plot_file = tmp_path / "plots"
    plot_file.write_text("x")
    with pytest.raises(InputError, match="expected a folder for the files, got an existing file"):
        check_outputs([Output(plot_file, "--plots", directory=True)], overwrite=True)
    same = tmp_path / "out.h5"
    with pytest.raises(InputError, match="--event-file-output: expected a path different from --output"):
        check_outputs([Output(same, "--output"), Output(tmp_path / "." / "out.h5", "--event-file-output")])


def test_an_output_that_is_a_pipe_or_device_is_refused_even_with_overwrite(tmp_path: Path) -> None:
    """``-o /dev/null --overwrite`` renamed a file over the device node (root: /dev/null became a
    regular file for the whole machine); a named pipe stands in for the device here."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(InputError, match=r"--output: expected a regular file or a new path .* got a device"):
        check_outputs([Output(pipe, "--output")], overwrite=True)
    assert pipe.is_fifo()


def test_a_read_only_folder_is_one_line_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # os.access says "read-only" the way it does for a normal user (root passes chmod 555).
    monkeypatch.setattr("spanet_lite.outputs.os.access", lambda path, mode: False)
    code = generate_cli.main(["ttbar_allhad", "-n", "10", "-q", "-o", str(tmp_path / "x.h5")])
    assert code == 2
    assert "expected a folder we may write to" in one_line_error(capsys, "spanet-generate")
    assert folder_listing(tmp_path) == []


def test_generate_refuses_one_path_for_both_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    same = str(tmp_path / "events.h5")
    code = generate_cli.main(["ttbar_allhad", "-n", "10", "-q", "-o", same, "--event-file-output", same])
    assert code == 2 and "the same path" in one_line_error(capsys, "spanet-generate")
    assert folder_listing(tmp_path) == []


def test_test_json_predict_and_export_never_replace_a_checkpoint_or_an_existing_file(
    ttbar_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir, data = ttbar_run
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    before = checkpoint.read_bytes()
    assert test_cli.main([str(run_dir), "-tf", str(data), "--json", str(checkpoint), "--overwrite"]) == 2
    assert f"got the input {checkpoint}" in one_line_error(capsys, "spanet-test")
    best = checkpoint.with_name("best.ckpt")
    assert test_cli.main([str(run_dir), "-tf", str(data), "--json", str(best)]) == 2
    assert "inside a run directory" in one_line_error(capsys, "spanet-test")
    assert test_cli.main([str(run_dir), "-tf", str(data), "--json", str(data), "--overwrite"]) == 2
    assert "the input" in one_line_error(capsys, "spanet-test")
    assert predict_cli.main([str(run_dir), str(data), str(checkpoint)]) == 2
    assert f"got the input {checkpoint}" in one_line_error(capsys, "spanet-predict")
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"mine")
    assert export_cli.main([str(run_dir), str(onnx)]) == 2
    assert "--overwrite" in one_line_error(capsys, "spanet-export")
    assert checkpoint.read_bytes() == before and onnx.read_bytes() == b"mine"


def test_a_full_disk_while_writing_is_one_line_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.h5"))

    monkeypatch.setattr("spanet_lite.physics.generator.engine._write_rows", full)
    code = generate_cli.main(["ttbar_allhad", "-n", "10", "-q", "-o", str(tmp_path / "x.h5")])
    assert code == 74
    assert "No space left on device (free some space" in one_line_error(capsys, "spanet-generate")
    assert folder_listing(tmp_path) == []


def test_a_write_that_hdf5_itself_cannot_make_is_one_line_and_no_crash(tmp_path: Path) -> None:
    """A real refused write, not a patched one, and no root needed: a 1 MiB file-size limit
    (RLIMIT_FSIZE; Python ignores SIGXFSZ, so the write fails with EFBIG as on a full disk it
    fails with ENOSPC) refuses HDF5's own writes. HDF5 then failed to close the file as well and
    freed a dataset twice: h5py's "Exception ignored in __dealloc__" tracebacks after the line,
    then a segmentation fault (exit 139)."""
    pytest.importorskip("resource")  # the child sets its own file-size limit
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    limit = 1 << 20
    script = (f"import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
              "from spanet_lite.cli.generate import main; sys.exit(main())")
    output = tmp_path / "g.h5"
    command = [sys.executable, "-c", script, "ttbar_allhad", "-n", "100000", "-q", "-o", str(output)]
    process = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert process.returncode == 74, process.stderr[-3000:]
    assert process.stderr == f"spanet-generate: error: {output}: File too large\n"
    assert folder_listing(tmp_path) == []


@pytest.fixture(scope="module")
def thousand_event_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A run and 1000 events (270 KB): enough that the file-size limits below stop a command
    while it writes its datasets, not while it creates the file."""
    folder = tmp_path_factory.mktemp("thousand_event_run")
    data = write_ttbar_file(folder / "events.h5", num_events=1000)
    return make_run_dir(folder / "run", TTBAR_YAML, data), data


# The limits were measured on these files: each one made the command crash (exit 139, or a
# leftover scratch file) or name its temporary file before io.atomic_hdf5 wrote every HDF5 file.
@pytest.mark.parametrize(("command", "limit"), [
    ("spanet-predict", 262144),  # HDF5 failed to close, freed a dataset twice: exit 139
    ("spanet-data shuffle", 65536),  # the scratch file: exit 139
    ("spanet-data shuffle --scratch-dir", 65536),  # the same, named by the folder the user gave
    ("spanet-data concat", 200000),  # exit 74, but h5py's strerror named the temporary file
])
def test_a_real_refused_write_of_predict_or_data_is_one_line_exit_74_and_leaves_nothing(
    thousand_event_run: tuple[Path, Path], tmp_path: Path, command: str, limit: int
) -> None:
    """As the spanet-generate test above: a real file-size limit in a child process."""
    pytest.importorskip("resource")
    run_dir, data = thousand_event_run
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "o.h5"
    shown = target
    if command == "spanet-predict":
        module, argv = "predict", [str(run_dir), str(data), str(target)]
    else:
        operation = command.split()[1]
        inputs = [str(data)] * (2 if operation == "concat" else 1)
        module = "data"
        argv = [operation, *inputs, "-o", str(target), "-e", str(run_dir / "event_file.yaml"), "--quiet"]
        if command.endswith("--scratch-dir"):
            shown = tmp_path / "scratch"
            shown.mkdir()
            argv += ["--scratch-dir", str(shown)]
    script = (f"import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
              f"from spanet_lite.cli.{module} import main; sys.exit(main())")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    process = subprocess.run([sys.executable, "-c", script, *argv], env=env, capture_output=True,
                             text=True, timeout=300)
    program = command.split(" -")[0].split()[0]
    assert process.returncode == 74, process.stderr[-3000:]
    assert process.stderr == f"{program}: error: {shown}: File too large\n"
    assert folder_listing(folder) == []
    if shown != target:
        assert folder_listing(shown) == []


FULL_DISK = "No space left on device (free some space and run again)"


def hdf5_write_failure(filename: str) -> RuntimeError:
    """What h5py raises when the disk fills during ``Group.copy`` (seen on a 2 MB tmpfs): a
    RuntimeError, not an OSError, with the errno only in its text, naming the temporary file."""
    return RuntimeError(
        "Object copy failed (file write failed: time = Mon Dec 7 04:01:35 2026\n, filename = "
        f"'{filename}', file descriptor = 4, errno = 28, error message = 'No space left on device', "
        "buf = 0x56508423d12a, total write size = 72663, bytes this sub-write = 72663, offset = 2097152)"
    )


@pytest.mark.parametrize("command", ["spanet-predict", "spanet-test --json", "spanet-test --plots",
                                     "spanet-export"])
def test_a_full_disk_while_writing_names_the_output_exits_74_and_leaves_nothing(
    ttbar_run: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], command: str,
) -> None:
    """Each writer fails as the library it uses does on a full disk: h5py with a RuntimeError
    naming the temporary file, Python's write and onnx.save with an errno and no file name."""
    run_dir, data = ttbar_run
    folder = tmp_path / "out"
    folder.mkdir()

    def bare_enospc(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    if command == "spanet-predict":
        real_copy = h5py.Group.copy

        def copy_then_fill(self: h5py.Group, source: Any, dest: h5py.Group, *args: Any, **kw: Any) -> None:
            real_copy(self, source, dest, *args, **kw)  # part of the output is on disk
            raise hdf5_write_failure(dest.file.filename)

        monkeypatch.setattr(h5py.Group, "copy", copy_then_fill)
        target, main = folder / "o.h5", predict_cli.main
        argv = [str(run_dir), str(data), str(target)]
    elif command == "spanet-test --json":
        monkeypatch.setattr(Path, "write_text", bare_enospc)
        target, main = folder / "m.json", test_cli.main
        argv = [str(run_dir), "-tf", str(data), "--json", str(target)]
    elif command == "spanet-test --plots":
        monkeypatch.setattr("matplotlib.figure.Figure.savefig", bare_enospc)
        target, main = folder / "plots", test_cli.main
        argv = [str(run_dir), "-tf", str(data), "--plots", str(target)]
    else:
        monkeypatch.setattr("onnx.save", bare_enospc)
        target, main = folder / "model.onnx", export_cli.main
        argv = [str(run_dir), str(target)]
    assert main(argv) == 74
    program = command.split()[0]
    line = one_line_error(capsys, program)
    if command == "spanet-test --plots":  # the figure that did not fit, under the name asked for
        figure = rf"{re.escape(str(target))}/\w+\.png"
        assert re.fullmatch(rf"{program}: error: {figure}: {re.escape(FULL_DISK)}\n", line)
    else:
        assert line == f"{program}: error: {target}: {FULL_DISK}\n"
    assert folder_listing(folder) == []


@pytest.mark.parametrize("command", ["spanet-export --copy-decoder", "spanet-test --json --plots",
                                     "spanet-generate --event-file-output"])
def test_when_the_second_output_of_a_call_fails_the_first_is_not_left(
    ttbar_run: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], command: str,
) -> None:
    """A call that writes two outputs leaves both or neither: the model without its decoder,
    or the numbers without their plots, would look like a whole result."""
    run_dir, data = ttbar_run
    folder = tmp_path / "out"
    folder.mkdir()

    def bare_enospc(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    if command.startswith("spanet-export"):
        monkeypatch.setattr("spanet_lite.evaluation.export.shutil.copyfile", bare_enospc)
        second, program = folder / "onnx_decoder.py", "spanet-export"
        code = export_cli.main([str(run_dir), str(folder / "model.onnx"), "--copy-decoder"])
    elif command.startswith("spanet-generate"):  # the events were replaced, without their event file
        real_write_text = Path.write_text

        def enospc_for_the_event_file(self: Path, *args: Any, **kwargs: Any) -> int:
            if self.name.startswith(".events.yaml."):
                bare_enospc()
            return real_write_text(self, *args, **kwargs)

        monkeypatch.setattr(Path, "write_text", enospc_for_the_event_file)
        second, program = folder / "events.yaml", "spanet-generate"
        for mine in (folder / "events.h5", second):
            mine.write_bytes(b"mine")
        code = generate_cli.main(["ttbar_allhad", "-n", "10", "-q", "-o", str(folder / "events.h5"),
                                  "--event-file-output", str(second), "--overwrite"])
        assert [(folder / name).read_bytes() for name in ("events.h5", "events.yaml")] == [b"mine"] * 2
        for mine in (folder / "events.h5", second):
            mine.unlink()
    else:
        monkeypatch.setattr("spanet_lite.evaluation.plots.write_all", bare_enospc)
        second, program = folder / "plots", "spanet-test"
        code = test_cli.main([str(run_dir), "-tf", str(data), "--json", str(folder / "numbers.json"),
                              "--plots", str(second)])
    assert code == 74
    assert one_line_error(capsys, program) == f"{program}: error: {second}: {FULL_DISK}\n"
    assert folder_listing(folder) == []


def test_an_output_group_moves_its_outputs_only_when_all_are_written(tmp_path: Path) -> None:
    """io.all_or_nothing: nothing in place while the block runs; an existing file (replaced
    with --overwrite) is kept when a later output fails; all in place after success."""
    kept = tmp_path / "a.txt"
    kept.write_text("mine")
    with pytest.raises(OSError), spanet_io.all_or_nothing() as group:
        spanet_io.atomic_write_text(kept, "new", group=group)
        assert kept.read_text() == "mine"
        with spanet_io.atomic_directory(tmp_path / "new" / "plots", group=group) as staged:
            (staged / "x.png").write_bytes(b"png")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert folder_listing(tmp_path) == ["a.txt"] and kept.read_text() == "mine"
    with spanet_io.all_or_nothing() as group:
        spanet_io.atomic_write_text(kept, "new", group=group)
        with spanet_io.atomic_directory(tmp_path / "new" / "plots", group=group) as staged:
            (staged / "x.png").write_bytes(b"png")
    assert kept.read_text() == "new" and (tmp_path / "new" / "plots" / "x.png").read_bytes() == b"png"
    assert folder_listing(tmp_path) == ["a.txt", "new"]


def test_errors_of_other_files_keep_their_own_names_while_an_output_is_written(tmp_path: Path) -> None:
    """An input that cannot be read inside a write is not reported as the output's failure."""
    target = tmp_path / "o.h5"
    unreadable = OSError(errno.EIO, "Input/output error", str(tmp_path / "in.h5"))
    with pytest.raises(OSError) as raised, spanet_io.atomic_path(target):
        raise unreadable
    assert raised.value is unreadable
    with pytest.raises(RuntimeError, match="Unable to read"), spanet_io.atomic_path(target):
        raise RuntimeError("Unable to read dataset (errno = 5, error message = 'Input/output error')")
    assert folder_listing(tmp_path) == []


def test_a_temporary_file_left_by_sigkill_is_removed_by_the_next_write(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    target = tmp_path / "metrics.csv"
    host = spanet_io._host()
    stale = tmp_path / f".metrics.csv.spanet-{host}-{dead.pid}-abc{spanet_io.PARTIAL_SUFFIX}"
    alive = tmp_path / f".metrics.csv.spanet-{host}-{os.getpid()}-def{spanet_io.PARTIAL_SUFFIX}"
    stale.write_text("half")
    alive.write_text("being written")
    spanet_io.atomic_write_text(target, "epoch\n")
    assert folder_listing(tmp_path) == sorted([alive.name, "metrics.csv"])


# ------------------------------------------------------------------------- 2. signals
class RaiseSignalAt(Callback):
    """Sends ``signum`` to this process after batch ``batch`` of epoch ``epoch``."""

    def __init__(self, signum: int, epoch: int, batch: int) -> None:
        self.signum, self.epoch, self.batch = signum, epoch, batch

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            signal.raise_signal(self.signum)


@pytest.mark.slow
def test_sigterm_on_a_subprocess_saves_interrupted_ckpt_prints_resume_and_exits_143(
    tiny_training: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", "import sys; from spanet_lite.cli.train import main; sys.exit(main())",
               str(tiny_training), "-l", str(tmp_path), "-n", "job", "-q", "--epochs", "1000"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "job" / "version_0" / "metrics.csv"
    deadline = time.monotonic() + 120
    while not metrics.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert (tmp_path / "job" / "version_0" / "checkpoints" / "interrupted.ckpt").is_file()
    assert "terminated (SIGTERM)" in out and "resume with" in out


def test_sigterm_on_any_other_command_leaves_no_temporary_file(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    script = "import sys; from spanet_lite.cli.generate import main; sys.exit(main())"
    output = str(tmp_path / "big.h5")
    command = [sys.executable, "-X", "faulthandler", "-c", script, "ttbar_allhad", "-n", "50000000", "-q",
               "-o", output]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(tmp_path.iterdir()) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # say where it was: faulthandler prints every thread's stack
        process.send_signal(signal.SIGABRT)
        _, err = process.communicate()
        pytest.fail(f"still running 60 s after SIGTERM:\n{err[-6000:]}")
    assert process.returncode == 143 and err == "spanet-generate: error: terminated (SIGTERM)\n"
    assert folder_listing(tmp_path) == []


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [(Terminated, 143, "terminated (SIGTERM)"), (KeyboardInterrupt, 130, "interrupted")],
    ids=["SIGTERM", "Ctrl-C"],
)
def test_a_stop_signal_handled_inside_a_finaliser_still_stops_the_command(
    error: type[BaseException], code: int, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Python drops an exception raised in a finaliser (a weakref callback, a ``__del__``), where
    a signal handler may run: how one SIGTERM in thirty to ``spanet-generate`` was lost."""

    class Finalised:
        def __del__(self) -> None:
            raise error  # what the handler does when the signal lands here

    def body(argv: object) -> int:
        Finalised()  # dropped at once: its finaliser raises, and Python swallows that
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.01)
        return 0

    started = time.monotonic()
    assert run_cli("spanet-x", body, []) == code
    assert time.monotonic() - started < 5
    assert capsys.readouterr().err == f"spanet-x: error: {line}\n"


def test_a_sigterm_that_library_code_swallows_is_raised_again_until_the_command_stops(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An import inside numpy.random once dropped our Terminated without a trace, and
    ``spanet-generate`` wrote on: the handler's helper raises it again until it is caught."""
    monkeypatch.setattr(common_cli, "INSIST_SECONDS", 0.2)

    def body(argv: object) -> int:
        with contextlib.suppress(Terminated):  # dropped, as that import did
            signal.raise_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.01)
        return 0

    started = time.monotonic()
    assert run_cli("spanet-x", body, []) == 143
    assert time.monotonic() - started < 5
    assert capsys.readouterr().err == "spanet-x: error: terminated (SIGTERM)\n"


def test_the_helper_stops_raising_once_sigterm_is_no_longer_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler installed later in the process (a training run's) gets no stray SIGTERM."""
    monkeypatch.setattr(common_cli, "INSIST_SECONDS", 0.05)
    previous = signal.signal(signal.SIGTERM, common_cli._on_sigterm)
    try:
        with pytest.raises(Terminated):  # raised, then never caught by run_cli
            signal.raise_signal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    received: list[int] = []
    signal.signal(signal.SIGTERM, lambda number, frame: received.append(number))
    try:
        time.sleep(0.5)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert received == []


def test_a_second_sigterm_while_the_first_unwinds_lets_the_cleanup_finish(tmp_path: Path) -> None:
    def body(argv: object) -> int:
        try:
            signal.raise_signal(signal.SIGTERM)
        finally:
            signal.raise_signal(signal.SIGTERM)  # a batch system's second signal, or the helper's
            (tmp_path / "cleaned").write_text("done")
        return 0

    assert run_cli("spanet-x", body, []) == 143
    assert (tmp_path / "cleaned").read_text() == "done"


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_sigterm_while_the_temporary_file_is_made_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """The signal lands between creating the temporary file and the cleanup knowing its name,
    the window a prompt SIGTERM hit in the test above once."""
    import tempfile

    name = "mkstemp" if kind == "file" else "mkdtemp"
    real = getattr(tempfile, name)

    def make_then_signal(*args: Any, **kwargs: Any) -> Any:
        made = real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)
        return made

    monkeypatch.setattr(tempfile, name, make_then_signal)
    writer = spanet_io.atomic_path if kind == "file" else spanet_io.atomic_directory
    previous = signal.signal(signal.SIGTERM, common_cli._on_sigterm)
    try:
        with pytest.raises(Terminated), writer(tmp_path / "out.h5"):
            pytest.fail("the signal must stop the writer before its body")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert folder_listing(tmp_path) == []


def test_sigusr1_stops_like_sigterm_and_the_run_resumes(tiny_training: Path, tmp_path: Path) -> None:
    stopped = train(tiny_training, log_dir=tmp_path, name="slurm",
                    callbacks=[RaiseSignalAt(signal.SIGUSR1, epoch=0, batch=1)])
    assert stopped.signal_number == signal.SIGUSR1 and stopped.stopped == "pre-empted (SIGUSR1)"
    assert stopped.resume_checkpoint == stopped.run_dir / "checkpoints" / "interrupted.ckpt"
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL  # handlers restored
    resumed = train(resume=stopped.run_dir)
    assert resumed.stopped is None and resumed.epochs_completed == 2


def test_a_second_signal_aborts_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    killed: list[int] = []
    monkeypatch.setattr("spanet_lite.training.interrupt.os.kill", lambda pid, signum: killed.append(signum))
    stopper = StopController(lambda: None)
    stopper.install_signal_handler()
    try:
        stopper._on_signal(signal.SIGTERM, None)
        assert stopper.reason == "terminated (SIGTERM)" and killed == []
        stopper._on_signal(signal.SIGTERM, None)
        assert killed == [signal.SIGTERM]  # re-sent with the default action: the process dies of it
        with pytest.raises(KeyboardInterrupt):
            stopper._on_signal(signal.SIGINT, None)
    finally:
        stopper.restore_signal_handler()


@pytest.mark.parametrize(
    ("other", "reason", "number"),
    [(signal.SIGTERM, "terminated (SIGTERM)", signal.SIGTERM), (1, "time limit reached", None)],
)
def test_a_ddp_process_stopping_for_anothers_signal_stops_as_that_signal(
    monkeypatch: pytest.MonkeyPatch, other: int, reason: str, number: int | None
) -> None:
    """SIGTERM that reached rank 1 only stopped rank 0 too, but as "stopped by another process"
    with exit status 0: the status a shell or batch script sees said the job had finished."""
    from types import SimpleNamespace

    import torch

    from spanet_lite.training.interrupt import TrainingStopped

    class OtherProcess:  # the reduce over two processes, the other one saying ``other``
        root_device = torch.device("cpu")

        def reduce(self, tensor: torch.Tensor, reduce_op: str) -> torch.Tensor:
            assert reduce_op == "max"
            return torch.clamp(tensor, min=other)

    trainer = SimpleNamespace(world_size=2, strategy=OtherProcess(), num_training_batches=10)
    stopper = StopController(lambda: None)
    with pytest.raises(TrainingStopped) as stopped:
        stopper.on_train_batch_end(trainer, None, None, None, 0)  # type: ignore[arg-type]
    assert (stopped.value.reason, stopped.value.signal_number) == (reason, number)
    # The signal when it reaches this process too is its first, not a second that aborts at once.
    killed: list[int] = []
    monkeypatch.setattr("spanet_lite.training.interrupt.os.kill", lambda pid, signum: killed.append(signum))
    stopper._on_signal(signal.SIGTERM, None)
    assert killed == [] and stopper.signal_number == signal.SIGTERM


# ------------------------------------------------------- 4 + 5. resume: exact metrics, epochs
def test_a_resumed_epoch_reports_the_same_train_losses_as_an_uninterrupted_one(
    tiny_training: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    straight = train(tiny_training, log_dir=tmp_path, name="straight", epochs=3)
    stopped = train(tiny_training, log_dir=tmp_path, name="stopped", epochs=3,
                    callbacks=[RaiseSignalAt(signal.SIGINT, epoch=1, batch=1)])
    assert stopped.signal_number == signal.SIGINT
    train(resume=stopped.run_dir)

    def rows(run: Path) -> list[dict[str, str]]:
        with (run / "metrics.csv").open(newline="") as handle:
            return list(csv.DictReader(handle))

    expected, got = rows(straight.run_dir), rows(stopped.run_dir)
    keys = [k for k in expected[1] if k.startswith(("train/", "val/"))]
    assert len(got) == 3
    assert keys and [[row[k] for k in keys] for row in got] == [[row[k] for k in keys] for row in expected]

    too_few = "expected at least 3 epochs: the run has done 3 epoch(s), got 1"
    with pytest.raises(InputError) as error:
        train(resume=straight.run_dir, epochs=1)
    assert str(error.value) == f"epochs: {too_few}"
    assert train_cli.main(["--resume", str(straight.run_dir), "-e", "1", "-q"]) == 2
    assert one_line_error(capsys, "spanet-train") == f"spanet-train: error: -e/--epochs: {too_few}\n"
    with pytest.raises(InputError, match=r"^fast_dev_run: expected a new run .*got a checkpoint to continue "
                                         r"\(resume\)$"):
        train(resume=straight.run_dir, fast_dev_run=True)


def test_a_full_disk_during_training_marks_the_run_incomplete_and_resume_repairs_it(
    tiny_training: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from spanet_lite.training import recorder

    real = recorder.atomic_write_text

    def full_on_metrics(path: Any, text: str) -> None:
        if Path(path).name == "metrics.csv":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, text)

    monkeypatch.setattr(recorder, "atomic_write_text", full_on_metrics)
    code = train_cli.main([str(tiny_training), "-l", str(tmp_path), "-n", "full", "-q", "--epochs", "1"])
    err = one_line_error(capsys, "spanet-train")
    run = tmp_path / "full" / "version_0"
    assert code == 74 and f"{run} is incomplete" in err and f"--resume {run}" in err
    assert (run / "INCOMPLETE").read_text().startswith(str(run / "metrics.csv"))
    assert not (run / "metrics.csv").exists()

    monkeypatch.setattr(recorder, "atomic_write_text", real)
    assert train_cli.main(["--resume", str(run), "-q"]) == 0
    assert f"{run} was left incomplete" in " ".join(capsys.readouterr().out.split())
    assert (run / "metrics.csv").is_file() and not (run / "INCOMPLETE").exists()

    # A disk so full that not even the mark could be written: the missing metrics.csv says it.
    (run / "metrics.csv").unlink()
    assert train_cli.main(["--resume", str(run), "-q"]) == 0
    assert "metrics.csv is missing" in " ".join(capsys.readouterr().out.split())
    assert (run / "metrics.csv").is_file()


def test_a_full_disk_at_the_first_checkpoint_does_not_advise_a_resume_that_cannot_work(
    tiny_training: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The line said 'fix this, then spanet-train --resume RUN', which answered 'got no checkpoint'."""
    from spanet_lite.training import recorder

    def full(self: Any, checkpoint: Any, path: Any, storage_options: Any = None) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(recorder.AtomicCheckpointIO, "save_checkpoint", full)
    code = train_cli.main([str(tiny_training), "-l", str(tmp_path), "-n", "full", "-q", "--epochs", "1"])
    err = one_line_error(capsys, "spanet-train")
    run = tmp_path / "full" / "version_0"
    assert code == 74 and (f"{run} is incomplete: fix this, then start a new run: no epoch was saved to "
                           "resume from (free some space and run again)\n") in err
    assert not (run / "checkpoints" / "last.ckpt").exists()


def test_a_checkpoint_the_disk_refuses_is_an_oserror_naming_it_and_leaves_nothing(tmp_path: Path) -> None:
    """A real file-size limit (as above) under ``torch.save``: torch lost the errno and raised
    ``RuntimeError: basic_ios::clear: iostream error``, so spanet-train printed a traceback,
    exit 1, and did not mark its run directory incomplete."""
    pytest.importorskip("resource")
    limit = 1 << 16
    target = tmp_path / "checkpoints" / "last.ckpt"
    script = (f"import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
              "import torch; from spanet_lite.training.recorder import AtomicCheckpointIO\n"
              "try:\n    AtomicCheckpointIO().save_checkpoint({'w': torch.zeros(1 << 16)}, sys.argv[1])\n"
              "except OSError as error:\n    print(error.errno, error.filename)")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    process = subprocess.run([sys.executable, "-c", script, str(target)], env=env, capture_output=True,
                             text=True, timeout=300)
    assert (process.returncode, process.stdout) == (0, f"{errno.EFBIG} {target}\n"), process.stderr[-3000:]
    assert folder_listing(tmp_path) == []


def test_bad_devices_are_one_line(ttbar_run: tuple[Path, Path]) -> None:
    import torch

    from spanet_lite.devices import check_device

    with pytest.raises(InputError, match=r"--device: expected a torch device .*got 'gpu0'"):
        check_device("gpu0", "--device")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA device is visible"):
            check_device("cuda", "--device")
    with pytest.raises(InputError, match=r"--device"):
        check_device(f"cuda:{torch.cuda.device_count() + 3}", "--device")


def test_a_device_that_fails_as_the_network_moves_onto_it_names_device_or_the_flag(
    ttbar_run: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Busy, lost or out of memory: found only as the weights move, so load_run names its
    keyword and the commands translate it to the flag the user typed."""
    from spanet_lite.evaluation.run import load_run
    from spanet_lite.model.network import SpanetNetwork

    def busy(self: Any, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("CUDA error: all CUDA-capable devices are busy or unavailable\nmore lines")

    monkeypatch.setattr(SpanetNetwork, "to", busy)
    run_dir, data = ttbar_run
    failure = ("expected a usable cpu device, got CUDA error: all CUDA-capable devices are busy or "
               "unavailable more lines")
    with pytest.raises(InputError) as error:
        load_run(run_dir, device="cpu")
    assert str(error.value) == f"device: {failure}"
    assert test_cli.main([str(run_dir), "-tf", str(data), "--device", "cpu"]) == 2
    assert capsys.readouterr().err == f"spanet-test: error: --device: {failure}\n"


@pytest.mark.parametrize("device", ["meta", "xpu", "hpu", "ipu", "lazy", "mtia", "privateuseone", "xla:1"])
def test_device_types_torch_knows_but_spanet_lite_does_not_run_on_are_one_line(
    ttbar_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], device: str
) -> None:
    """torch.device accepts them all; each then failed deep in the run (meta: NotImplementedError
    on nonzero, xpu: "Torch not compiled with XPU enabled", hpu: no module torch.hpu)."""
    run_dir, data = ttbar_run
    expected = (f"--device: expected a device type spanet_lite runs on, one of cpu, cuda, mps "
                rf"\(available here: cpu[^)]*\), got '{device}'\n")
    assert predict_cli.main([str(run_dir), str(data), str(tmp_path / "o.h5"), "--device", device]) == 2
    assert re.search(expected, one_line_error(capsys, "spanet-predict"))
    assert test_cli.main([str(run_dir), "-tf", str(data), "--device", device]) == 2
    assert re.search(expected, one_line_error(capsys, "spanet-test"))
    assert folder_listing(tmp_path) == []


def test_a_busy_gpu_during_training_is_one_line(
    tiny_training: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import lightning.pytorch as pl

    def busy(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("CUDA error: all CUDA-capable devices are busy or unavailable\nmore lines")

    """The line names what chose the devices: the options' num_gpu unless the caller gave a
    count, and then the keyword, or the flag as the command line typed it."""
    monkeypatch.setattr(pl.Trainer, "fit", busy)
    failure = (
        "expected usable CPU devices, got CUDA error: all CUDA-capable devices are busy or unavailable "
        "more lines"  # the error's lines, on one
    )
    with pytest.raises(InputError, match=rf"^num_gpu: {failure}$"):
        train(tiny_training, log_dir=tmp_path, name="busy")
    with pytest.raises(InputError, match=rf"^processes: {failure}$"):
        train(tiny_training, log_dir=tmp_path, name="busy", processes=1)
    with pytest.raises(InputError, match=rf"^gpus: {failure}$"):
        train(tiny_training, log_dir=tmp_path, name="busy", gpus=0)
    base = [str(tiny_training), "-l", str(tmp_path), "-n", "busy", "-q"]
    for flags, named in (([], "num_gpu"), (["--processes", "1"], "--processes"), (["-g", "0"], "-g/--gpus")):
        assert train_cli.main([*base, *flags]) == 2
        assert one_line_error(capsys, "spanet-train") == f"spanet-train: error: {named}: {failure}\n"


ALLOCATOR_FAILURE = (
    "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried "
    "to allocate 400000000 bytes. Error code 12 (Cannot allocate memory)"
)


def test_a_network_too_large_for_memory_is_one_line(
    tiny_training: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hidden_dim 10^8 asks torch's CPU allocator for more than the machine has."""
    from spanet_lite.model.network import SpanetNetwork

    def too_large(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(ALLOCATOR_FAILURE)

    monkeypatch.setattr(SpanetNetwork, "__init__", too_large)
    with pytest.raises(InputError) as raised:
        train(tiny_training, log_dir=tmp_path, name="large")
    assert str(raised.value) == (
        "hidden_dim and the layer counts: expected a network whose weights fit in memory, "
        f"got {ALLOCATOR_FAILURE}"
    )
    assert not (tmp_path / "large").exists()


def test_a_training_step_too_large_for_memory_points_at_the_batch_size(
    tiny_training: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lightning.pytorch as pl

    def too_large(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(ALLOCATOR_FAILURE)

    monkeypatch.setattr(pl.Trainer, "fit", too_large)
    expected = r"^batch_size: expected training steps that fit in memory, got \[enforce"
    with pytest.raises(InputError, match=expected):
        train(tiny_training, log_dir=tmp_path, name="large")


def test_a_read_only_log_dir_is_refused_before_reading_the_data(
    tiny_training: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("spanet_lite.outputs.os.access", lambda path, mode: False)
    monkeypatch.setattr("spanet_lite.training.run.open_data", lambda *args: pytest.fail("read the data"))
    runs = tmp_path / "runs"
    parent = tmp_path.absolute()  # runs/ does not exist yet: the folder it would be made in is named
    refusal = f"{parent}: log_dir: expected a folder we may write to, got {parent} is read-only"
    with pytest.raises(InputError) as error:
        train(tiny_training, log_dir=runs)
    assert str(error.value) == refusal
    assert train_cli.main([str(tiny_training), "-l", str(runs), "-q"]) == 2
    assert one_line_error(capsys, "spanet-train") == (
        f"spanet-train: error: {refusal.replace(': log_dir: ', ': -l/--log_dir: ')}\n"
    )
    assert folder_listing(tmp_path) == []


def test_plots_are_written_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "plots"
    with pytest.raises(OSError, match="No space"), spanet_io.atomic_directory(target) as folder:
        (folder / "roc.png").write_bytes(b"png")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert folder_listing(tmp_path) == []
    with spanet_io.atomic_directory(target) as folder:
        (folder / "roc.png").write_bytes(b"png")
    assert folder_listing(tmp_path) == ["plots"] and folder_listing(target) == ["roc.png"]


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_failed_write_removes_the_folders_it_made_and_only_those(tmp_path: Path, kind: str) -> None:
    writer = spanet_io.atomic_path if kind == "file" else spanet_io.atomic_directory
    with pytest.raises(KeyboardInterrupt), writer(tmp_path / "new" / "sub" / "out"):
        raise KeyboardInterrupt  # Ctrl-C mid-write
    assert folder_listing(tmp_path) == []
    (tmp_path / "mine").mkdir()  # the user's: kept, though empty
    with pytest.raises(OSError, match="No space"), writer(tmp_path / "mine" / "new" / "out"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert folder_listing(tmp_path) == ["mine"] and folder_listing(tmp_path / "mine") == []
    with pytest.raises(OSError, match="No space"), writer(tmp_path / "mine" / "new" / "sub" / "out"):
        (tmp_path / "mine" / "new" / "theirs.txt").write_text("another process's file")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert folder_listing(tmp_path / "mine" / "new") == ["theirs.txt"]


@pytest.mark.parametrize("command", ["spanet-predict", "spanet-generate"])
def test_an_interrupted_command_leaves_no_folder_it_made_for_its_output(
    ttbar_run: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], command: str,
) -> None:
    """``OUT`` in folders that do not exist yet (``nd9/a/o.h5``): Ctrl-C mid-write exits 130 and
    removes nd9/a/ and nd9/ again."""
    run_dir, data = ttbar_run
    output = tmp_path / "nd9" / "a" / "o.h5"

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    if command == "spanet-predict":
        monkeypatch.setattr(h5py.Group, "copy", interrupted)
        code = predict_cli.main([str(run_dir), str(data), str(output)])
    else:
        monkeypatch.setattr("spanet_lite.physics.generator.engine._write_rows", interrupted)
        code = generate_cli.main(["ttbar_allhad", "-n", "10", "-q", "-o", str(output)])
    assert code == 130 and one_line_error(capsys, command) == f"{command}: error: interrupted\n"
    assert folder_listing(tmp_path) == []


# ------------------------------------------------------------------- 3. hostile inputs
def test_an_alias_bomb_is_refused_in_bounded_time(tmp_path: Path) -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\nINPUTS: *i\n")
    started = time.monotonic()
    with pytest.raises(InputError, match="values after expanding aliases"):
        load_event_spec(bomb)
    assert time.monotonic() - started < 5


def test_control_characters_in_yaml_are_one_line() -> None:
    with pytest.raises(InputError, match=r"x\.yaml: line 2: expected printable text .*'\\x00'"):
        load_yaml_with_lines("INPUTS:\n  a: b\x00\n", "x.yaml")


def test_an_oversized_event_file_is_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spanet_io, "MAX_TEXT_BYTES", 1024)
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 200)
    with pytest.raises(InputError, match=r"big\.yaml: expected an event file of at most .*2,000 bytes"):
        load_event_spec(big)


def test_deeply_nested_json_is_one_line(tmp_path: Path) -> None:
    from spanet_lite.config import load_options

    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError, match=r"deep\.json: expected an options object, got JSON nested too"):
        load_options(deep)


def test_an_impossible_selection_stops_with_the_option_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    guard = AcceptanceGuard(Selection(min_jets=50, min_btags=2))
    guard.add(EMPTY_AFTER - 1, 0)
    with pytest.raises(InputError) as error:
        guard.add(1, 0)
    assert str(error.value) == (
        "selection: expected a selection that accepts at least 0.0001 of the events (at least 50 jets and "
        "2 b-tags here, among the objects that pass the physics parameters' cuts, jet_pt_min, lepton_pt_min, "
        f"...: loosen them), got none accepted of the first {EMPTY_AFTER:,} simulated"
    )
    guard = AcceptanceGuard(Selection(min_jets=4, min_btags=2))
    with pytest.raises(InputError, match=r"accepts at least 0\.0001.*got 99 accepted"):
        guard.add(1_000_000, 99)
    # The command names its flags (ten b-tags: none in ~10^5 candidates, a second's work).
    assert generate_cli.main(["ttbar_allhad", "-n", "10", "-q", "--min-btags", "10",
                              "-o", str(tmp_path / "x.h5")]) == 2
    assert re.fullmatch(
        r"spanet-generate: error: --min-jets/--min-btags/--set: expected a selection that accepts at least "
        r"0\.0001 of the events \(at least 6 jets and 10 b-tags here, among the objects that pass the "
        r"physics parameters' cuts, jet_pt_min, lepton_pt_min, \.\.\.: loosen them\), got none accepted of "
        r"the first [0-9,]+ simulated\n", capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []
    # A physics cut no lepton passes empties the selection too: the lepton it needs is said, and --set
    assert generate_cli.main(["ttbar_semilep", "-n", "10", "-q", "--set", "lepton_pt_min=1e6",
                              "-o", str(tmp_path / "x.h5")]) == 2
    assert "--min-jets/--min-btags/--set: expected a selection that accepts at least 0.0001 of the events " \
        "(at least 4 jets, 2 b-tags and 1 lepton here" in one_line_error(capsys, "spanet-generate")
    assert list(tmp_path.iterdir()) == []
    code = generate_cli.main(["ttbar_allhad", "-n", "10", "-q", "--min-jets", "8", "--max-objects", "6",
                              "-o", str(tmp_path / "x.h5")])
    assert code == 2 and "--min-jets: expected at most 6" in one_line_error(capsys, "spanet-generate")


# ----------------------------------------------------------- 6. checks that see what training sees
def _broken(tmp_path: Path, change: str) -> Path:
    arrays = tiny_arrays()
    if change == "log_domain":
        arrays["INPUTS/Leptons/pt"][0, 0] = -5.0  # Leptons.pt is a `log` feature
    elif change == "empty_mask":
        arrays["INPUTS/Leptons/MASK"][:] = False
        for key in ("TARGETS/lt/l",):
            arrays[key][:] = -1
        arrays["TARGETS/h/x2"][:] = -1
    elif change == "negative_weights":
        arrays["WEIGHTS/EVENT/weight"][:] = -1.0
    elif change == "zero_weights":
        arrays["WEIGHTS/EVENT/weight"][:] = 0.0
    return write_h5(tmp_path / f"{change}.h5", arrays)


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ("log_domain", "log_domain", "values above -1 for the log option"),
        ("empty_mask", "empty_mask", "at least one real object (MASK True)"),
        ("negative_weights", "weight", "weights with a positive sum"),
        ("zero_weights", "weight", "some non-zero weights"),
    ],
)
def test_inspect_and_training_refuse_the_same_values(
    tmp_path: Path, change: str, code: str, message: str
) -> None:
    path = _broken(tmp_path, change)
    report = validate_file(path, TINY_SPEC)
    assert code in [p.code for p in report.errors] and not report.ok
    module = SpanetDataModule(TINY_SPEC, _options(), training_file=path)
    with pytest.raises(InputError, match=re.escape(message)):
        module.setup("fit")


def test_a_few_negative_weights_are_a_warning_in_inspect_and_in_training(tmp_path: Path) -> None:
    arrays = random_arrays(40, seed=2)
    arrays["WEIGHTS/EVENT/weight"] = np.ones(40, dtype=np.float32)
    arrays["WEIGHTS/EVENT/weight"][3] = -0.5  # an NLO sample's negative weight
    path = write_h5(tmp_path / "nlo.h5", arrays)
    report = validate_file(path, TINY_SPEC)
    assert report.ok and [p.level for p in report.problems if p.code == "weight"] == ["warning"]
    with pytest.warns(SpanetWarning, match="1 negative weight"):
        SpanetDataModule(TINY_SPEC, _options(), training_file=path).setup("fit")


def _options() -> Any:
    from spanet_lite.config.options import Options

    return Options(batch_size=2, train_validation_split=0.5, partial_events=True)


def test_a_particle_mask_over_an_unmatched_product_is_a_warning_in_inspect_and_in_training(
    tmp_path: Path,
) -> None:
    """SPANet reads TARGETS/<p>/MASK alone (such a particle is reconstructable, and always wrong in
    its tables); we read every product matched AND MASK: the file is read otherwise, so say so."""
    arrays = random_arrays(40, seed=2)
    full = (arrays["TARGETS/t/b"] >= 0) & (arrays["TARGETS/t/q1"] >= 0) & (arrays["TARGETS/t/q2"] >= 0)
    arrays["TARGETS/t/MASK"] = np.ones(40, dtype=bool)
    arrays["TARGETS/lt/MASK"] = (arrays["TARGETS/lt/b"] >= 0) & (arrays["TARGETS/lt/l"] >= 0)  # agrees
    path = write_h5(tmp_path / "masked.h5", arrays)
    report = validate_file(path, TINY_SPEC)
    found = [(p.level, p.where, p.message) for p in report.problems if p.code == "mask_unmatched"]
    count = int((~full).sum())
    assert report.ok and count > 0
    message = (f"{count} event(s) with MASK True but a product not matched (-1): SPANet counts such a "
               "particle as reconstructable (always wrong in its tables); spanet_lite counts it as not "
               "reconstructable (every product matched AND MASK)")
    assert found == [("warning", "TARGETS/t/MASK", message)]
    with pytest.warns(SpanetWarning, match=f"TARGETS/t/MASK: {count} event"):
        SpanetDataModule(TINY_SPEC, _options(), training_file=path).setup("fit")


def test_a_lone_far_class_label_is_a_warning_in_inspect_and_in_training(tmp_path: Path) -> None:
    arrays = random_arrays(40, seed=2)
    labels = arrays["CLASSIFICATIONS/EVENT/signal"]
    labels[:] = np.arange(40) % 2
    labels[7] = 5
    path = write_h5(tmp_path / "typo.h5", arrays)
    report = validate_file(path, TINY_SPEC)
    warning = next(p for p in report.problems if p.code == "label_gap")
    assert warning.level == "warning" and report.ok
    assert "make 6 classes, but 2, 3, 4 never occur" in warning.message
    module = SpanetDataModule(TINY_SPEC, _options(), training_file=path)
    with pytest.warns(SpanetWarning, match="make 6 classes"):
        module.setup("fit")


def test_a_lone_huge_class_label_is_the_same_warning_not_a_memory_error(tmp_path: Path) -> None:
    """The warning listed the missing classes from set(range(highest label + 1)): a label of 2**30
    (an event number written as a label) was a MemoryError traceback instead of the warning."""
    arrays = random_arrays(40, seed=2)
    labels = arrays["CLASSIFICATIONS/EVENT/signal"]
    labels[:] = np.arange(40) % 2
    labels[7] = 2**30
    report = validate_file(write_h5(tmp_path / "huge.h5", arrays), TINY_SPEC)
    assert [p.code for p in report.problems] == ["label_gap"]
    assert "make 1073741825 classes, but 2, 3, 4, 5, 6, ... never occur" in report.problems[0].message


def test_predict_refuses_inputs_training_would_refuse(tmp_path: Path) -> None:
    path = _broken(tmp_path, "log_domain")
    with pytest.raises(InputError, match=r"INPUTS/Leptons/pt: expected values above -1"):
        validate_file(path, TINY_SPEC, inputs_only=True).raise_for_errors()
    with h5py.File(path, "a") as file:  # targets do not matter for predictions
        del file["TARGETS"]
        file["INPUTS/Leptons/pt"][0, 0] = 1.0
    validate_file(path, TINY_SPEC, inputs_only=True).raise_for_errors()


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_folder_refusing_the_temporary_file_names_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """A folder that os.access calls writable but the server refuses (NFS with root squash, an
    ACL, /sys): the line named the temporary ``.OUT.h5.spanet-host-pid-xyz.partial``, a file the
    user never heard of, instead of OUT.h5."""
    import tempfile

    name = "mkstemp" if kind == "file" else "mkdtemp"

    def refuse(*args: Any, prefix: str = "", suffix: str = "", dir: str = "", **kwargs: Any) -> Any:
        raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, f"{prefix}x1y2{suffix}"))

    monkeypatch.setattr(tempfile, name, refuse)
    writer = spanet_io.atomic_path if kind == "file" else spanet_io.atomic_directory
    target = tmp_path / "out.h5"

    def body(argv: Any) -> int:
        with writer(target):
            pytest.fail("the writer must stop before its body")
        return 0

    assert run_cli("spanet-x", body, []) == common_cli.EXIT_OS_ERROR
    assert f"error: {target}: Permission denied" in one_line_error(capsys, "spanet-x")
    assert folder_listing(tmp_path) == []
    with pytest.raises(PermissionError) as raised, writer(target):
        pass
    assert raised.value.filename == str(target) and raised.value.errno == errno.EACCES
