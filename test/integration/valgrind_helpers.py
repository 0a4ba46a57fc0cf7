"""
Running our programs under valgrind's memcheck and reading its XML report:
the broker with the plugin (test_valgrind.py), mosquitto_ctrl with the
module and the console daemon (test_valgrind_tools.py).

An error fails a test when its kind is a real fault (invalid access, use of
uninitialised memory, a definite or indirect leak) and a frame of one of its
stacks is ours. Which frames are ours depends on the program: `OursIn` names
our object files and our source folders. What valgrind reports against
mosquitto, mosquitto_ctrl or the libraries alone is not ours to fix: it is
printed (pytest -s shows it) and given as a warning.
"""
import os
import shutil
import warnings
import xml.etree.ElementTree as ElementTree

import pytest

from tokens_helpers import REPO

VALGRIND = shutil.which("valgrind")
skip_without_valgrind = pytest.mark.skipif(VALGRIND is None,
                                           reason="valgrind is not installed (Debian package valgrind)")

# Report kinds that fail the test when a frame is ours. Possibly lost
# blocks and still reachable memory are only shown: a pointer into a
# block's middle, which libraries keep for their own reasons, is enough to
# make the first, and a program that ends through exit() has the second.
FAILING_KINDS = {"InvalidRead", "InvalidWrite", "InvalidFree", "MismatchedFree", "InvalidJump",
                 "Overlap", "InvalidMemPool", "UninitCondition", "UninitValue", "SyscallParam",
                 "ClientCheck", "FishyValue", "Leak_DefinitelyLost", "Leak_IndirectlyLost"}


def valgrind_command(xml_file):
    """The words to put in front of a command; `xml_file` may hold %p (the pid).
    --keep-debuginfo: mosquitto unloads the plugin before exiting, so the
    leak report would otherwise show "???" where the plugin's frames are."""
    return [VALGRIND, "--leak-check=full", "--show-leak-kinds=definite,indirect,possible",
            "--errors-for-leak-kinds=definite,indirect", "--track-origins=no", "--keep-debuginfo=yes",
            "--num-callers=30", "--xml=yes", f"--xml-file={xml_file}"]


class OursIn:
    """What counts as ours in a report: a frame in one of `objects` (file
    names of our build outputs) or compiled from one of `source_folders`
    (relative to the repository). `excuse(error, ours)`, when given, names
    the reason why an error with our frames is someone else's to fix (or
    returns None): such an error is a warning."""

    def __init__(self, description, objects, source_folders, excuse=None):
        self.description = description
        self.objects = {os.path.basename(o) for o in objects}
        self.folders = {os.path.join(REPO, f) for f in source_folders}
        self.excuse = excuse or (lambda error, ours: None)

    def excusing(self, excuse):
        """The same, with an excuse."""
        other = OursIn(self.description, [], [], excuse)
        other.objects, other.folders = self.objects, self.folders
        return other

    def __call__(self, frame):
        obj = frame.findtext("obj") or ""
        source_dir = os.path.realpath(frame.findtext("dir") or "/")
        return os.path.basename(obj) in self.objects or source_dir in self.folders


# ---------------------------------------------------------------- the report

def frame_text(frame):
    fields = {child.tag: child.text for child in frame}
    where = fields.get("fn") or fields.get("ip", "?")
    if fields.get("file"):
        where += f" ({fields.get('dir', '')}/{fields['file']}:{fields.get('line', '?')})"
    return f"{where} in {fields.get('obj', '?')}"


def error_text(error):
    """One error as valgrind prints it: what happened, its stack, and the
    stacks that explain it (where the block was allocated or freed)."""
    lines = [f"{error.findtext('kind')}:"]
    for part in error:
        if part.tag in ("what", "auxwhat"):
            lines.append(f"  {part.text}")
        elif part.tag in ("xwhat", "xauxwhat"):
            lines.append(f"  {part.findtext('text')}")
        elif part.tag == "stack":
            lines.extend(f"      {frame_text(frame)}" for frame in part.iter("frame"))
    return "\n".join(lines)


def read_report(path):
    """valgrind's XML report: its <error> elements."""
    root = ElementTree.parse(path).getroot()
    assert root.find("status[state='FINISHED']") is not None, f"{path}: valgrind did not finish"
    return list(root.iter("error"))


def sort_report(path, ours):
    """(errors of ours that fail, everything else) in one report, as texts."""
    failing, others = [], []
    for error in read_report(path):
        text = error_text(error)
        if error.findtext("kind") not in FAILING_KINDS or not any(map(ours, error.iter("frame"))):
            others.append(text)
        elif ours.excuse(error, ours):
            others.append(f"{text}\n  (not failing: {ours.excuse(error, ours)})")
        else:
            failing.append(text)
    return failing, others


def check_reports(reports, ours):
    """`reports`: (what ran, report path) pairs, or (what ran, report path,
    what is ours in that run) triples. Fails on every error of ours in any of
    them, naming the run; prints and warns about the rest."""
    failures, warned, count = [], [], 0
    for label, path, *own in reports:
        assert os.path.exists(path), f"no valgrind report {path} for {label}"
        failing, others = sort_report(path, own[0] if own else ours)
        print(f"\nvalgrind, {label}: {len(failing)} error(s) in {ours.description}, "
              f"{len(others)} other report(s)" + "".join(f"\n{text}" for text in others))
        if others:
            warned.append(f"{label}: {len(others)} in {path}")
        if failing:
            count += len(failing)
            failures.append(f"--- {label} (report {path}):\n" + "\n\n".join(failing))
    if warned:
        warnings.warn(f"valgrind reported error(s) or leak(s) that do not fail the test (outside "
                      f"{ours.description}, possible leaks, or excused): " + "; ".join(warned))
    if failures:
        pytest.fail(f"valgrind found {count} error(s) in {ours.description}:\n" + "\n\n".join(failures),
                    pytrace=False)
