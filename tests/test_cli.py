"""The ``zoo`` command: starts without PyTorch where it can, lists and describes what the zoo holds,
suggests the closest names, and says every user error in one line with exit status 2.

- ``zoo --help``, ``zoo list``, ``zoo info ARCH.TAG``, ``zoo info ARCH`` and ``zoo neurons --help`` import no torch (checked in
  a fresh process: the import is what made every command take seconds to start);
- ``zoo/architectures.json``, which ``zoo info ARCH`` reads, is what building every architecture gives
  (else the test names the command that rewrites it);
- :mod:`zoo.catalog` reads the same names as the runtime registry, the same mirror as :mod:`zoo.hub`,
  and parameter counts from the safetensors header equal to the loaded models';
- ``zoo info ARCH.TAG`` describes the checkpoint (its own kwargs and parameters), not the default
  network of its architecture.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import zoo
from zoo import archfacts, catalog, cli, hub, info, suggest
from zoo.neurons import spec as specs

ROOT = Path(__file__).resolve().parents[1]
MLF = "spiking_convnet.mlf_fashion_mnist_t4_c32"


def zoo_main(capsys, argv: list[str]) -> tuple[int, str, str]:
    """``zoo ARGV`` in this process: (exit status, stdout, stderr)."""
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse: --help, usage errors
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, argv: list[str], status: int = 2) -> str:
    code, _, err = zoo_main(capsys, argv)
    lines = err.strip().splitlines()
    assert code == status and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---- starting at once ----------------------------------------------------------------------------

FAST = [["--help"], ["list"], ["list", "--pretrained"], ["info", MLF], ["info", "spiking_resnet20"], ["info", "no_such_arch"],
        ["eval", "--help"], ["leaderboard", "--help"], ["train", "--help"], ["eval", "spiking_convnt.x"], ["neurons", "--help"],
        ["neurons", "--T", "x"]]


def heavy_imports(argv: list[str], modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` ``zoo ARGV`` has imported when it ends, run in a fresh process."""
    probe = ("import sys\nfrom zoo.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             f"heavy = sorted(m for m in {modules!r} if m in sys.modules)\n"
             "print('IMPORTED', heavy, file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", probe, *argv], cwd=ROOT, capture_output=True, text=True, check=False,
                            timeout=300)
    line = next((line for line in result.stderr.splitlines() if line.startswith("IMPORTED ")), None)
    assert line is not None, result.stderr[-2000:]
    return json.loads(line.removeprefix("IMPORTED ").replace("'", '"'))


@pytest.mark.parametrize("argv", FAST, ids=" ".join)
def test_commands_that_start_without_torch(argv):
    assert heavy_imports(argv, ("torch", "numpy", "matplotlib")) == []


@pytest.mark.slow
@pytest.mark.parametrize("argv", [["train", "recipes/lif_spiking_convnet_nmnist_t8_c32.yaml", "--check"],
                                  ["train", "recipes/no_such_recipe.yaml"]], ids=" ".join)
def test_paths_without_images_do_not_import_torchvision(argv):
    """torchvision imports torch._dynamo (4 s); only an image data set's transform needs it."""
    assert heavy_imports(argv, ("torch", "torchvision", "torch._dynamo")) == ["torch"]


# ---- zoo list ------------------------------------------------------------------------------------


def test_catalog_reads_the_registry_without_importing_it():
    assert catalog.architectures() == zoo.list_models()
    assert sorted(catalog.published()) == zoo.list_models(pretrained=True)
    from zoo import registry

    assert {name: vars(entry) for name, entry in catalog.published().items()} == {
        name: vars(entry) for name, entry in registry.read_registry(registry.PRETRAINED_FILE).items()}
    assert catalog.mirror_root() == hub.mirror_root()


def test_list(capsys):
    code, out, _ = zoo_main(capsys, ["list"])
    assert code == 0 and out.split() == zoo.list_models()
    code, out, _ = zoo_main(capsys, ["list", "resnet20"])  # a part of the name
    assert code == 0 and out.split() == [n for n in zoo.list_models() if "resnet20" in n]
    code, out, _ = zoo_main(capsys, ["list", "ds_resnet*"])  # a glob
    assert code == 0 and out.split() == zoo.list_models("ds_resnet*")
    code, out, _ = zoo_main(capsys, ["list", "--pretrained", "nmnist"])
    assert code == 0 and out.split() == [n for n in zoo.list_models(pretrained=True) if "nmnist" in n]
    line = one_line_error(capsys, ["list", "spiking_convnt"], status=1)
    assert line == "zoo list: no architecture matches 'spiking_convnt'; similar: spiking_convnet"


# ---- suggestions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name,known,first", [
    ("spiking_convnt", "arch", "spiking_convnet"),  # a dropped letter
    ("spikingvgg7", "arch", "spiking_vgg7"),
    ("resnet20", "arch", "ds_resnet20"),  # a part of several names
    ("spiking_convnet.mlf_fashon_mnist_t4_c32", "published", MLF),  # a typo in the tag
    ("spiking_convnt.mlf_fashion_mnist_t4_c32", "published", MLF),  # a typo in the architecture
])
def test_closest_names(name, known, first):
    names = zoo.list_models(pretrained=known == "published")
    close = suggest.closest(name, names)
    assert close[0] == first and len(close) <= suggest.MAX_SUGGESTIONS


def test_a_typo_is_not_answered_with_unrelated_names():
    assert suggest.closest("spiking_convnt", zoo.list_models()) == ["spiking_convnet"]
    # an unknown tag of a known architecture: that architecture's checkpoints, never another's
    for arch in ("spiking_convnet", "spiking_vgg7"):  # (a short tag is like none of spiking_vgg7's long ones)
        close = suggest.closest(f"{arch}.nope", zoo.list_models(pretrained=True))
        assert close and all(name.startswith(f"{arch}.") for name in close)
    assert suggest.closest("fashion_mnis", ["cifar10", "fashion_mnist", "mnist", "nmnist"]) == ["fashion_mnist"]


@pytest.mark.parametrize("argv,expected", [
    (["evl"], "zoo: error: unknown command 'evl'; similar: eval"),
    (["info", "spiking_convnt"], "zoo info: unknown architecture 'spiking_convnt'; similar: spiking_convnet."),
    (["info", "spiking_convnet.mlf_fashion_mnist_t4_c3"], f"similar: {MLF},"),
    (["eval", "spiking_convnt.mlf_fashion_mnist_t4_c32"], "zoo eval: unknown architecture 'spiking_convnt'; similar: spiking_convnet."),
    (["eval", "spiking_convnet.mlf_fashon_mnist_t4_c32"], f"zoo eval: unknown checkpoint 'spiking_convnet.mlf_fashon_mnist_t4_c32'; similar: {MLF},"),
    (["eval", "spiking_vgg16"], "zoo eval: architecture 'spiking_vgg16' has no published checkpoint"),
])
def test_unknown_names_are_one_line_with_the_closest_names(capsys, argv, expected):
    assert expected in one_line_error(capsys, argv)


@pytest.mark.parametrize("argv,expected", [
    (["eval", MLF, "--T", "0"], "zoo eval: error: argument --T: --T values must be from 1 to 4096, got '0'"),
    (["eval", MLF, "--T", "4,100000"], "zoo eval: error: argument --T: --T values must be from 1 to 4096, got '4,100000'"),
    (["eval", MLF, "--batch-size", "0"], "zoo eval: error: argument --batch-size: expected an integer >= 1, got '0'"),
    (["eval", "./no/such/folder"], ("zoo eval: ./no/such/folder: no such checkpoint folder; expected a folder holding "
                                    "config.json and model.safetensors, a published arch.tag or hf-hub:owner/repo")),
    (["eval", MLF, "--device", "foo"], "zoo eval: --device 'foo': expected cpu, cuda or cuda:N"),
    (["eval", MLF, "--device", "cuda:99"], "zoo eval: --device cuda:99: this machine has "),
    (["leaderboard", "--results", "no/such/folder"], ("zoo leaderboard: --results no/such/folder: no such folder; "
                                                      "expected the records folder")),
    (["publish", "no/such/folder"], "zoo publish: no/such/folder/config.json: no such file"),
    (["info", "spiking_vgg7", "--depth", "0"], "zoo info: error: argument --depth: expected an integer >= 1, got '0'"),
])
def test_option_and_folder_errors_are_one_line(capsys, argv, expected):
    assert one_line_error(capsys, argv).startswith(expected)


def test_an_unreadable_file_is_named_with_the_reason(capsys):
    def command(args):
        raise FileNotFoundError(2, "No such file or directory", "/no/such/folder")

    assert cli.one_line_errors(command, "zoo x")(None) == 2
    assert capsys.readouterr().err == "zoo x: /no/such/folder: No such file or directory\n"

    def bug(args):
        raise KeyError("a bug keeps its traceback")

    with pytest.raises(KeyError):
        cli.one_line_errors(bug, "zoo x")(None)


@pytest.mark.slow
def test_train_check_finds_the_parent_checkpoint(capsys):
    recipe = "recipes/lif_spiking_convnet_fashion_mnist_t4_c32.yaml"
    line = one_line_error(capsys, ["train", str(ROOT / recipe), "--init-from", "spiking_convnet.nope", "--check"])
    assert line.startswith(f"zoo train: {ROOT / recipe}: field 'model.init.checkpoint': no published checkpoint "
                           "'spiking_convnet.nope'; similar: spiking_convnet.")
    line = one_line_error(capsys, ["train", str(ROOT / recipe), "--init-from", "runs/no_such_run/checkpoint", "--check"])
    assert line.startswith(f"zoo train: {ROOT / recipe}: field 'model.init.checkpoint': runs/no_such_run/checkpoint: "
                           "no such checkpoint folder; expected a folder holding config.json")
    code, out, err = zoo_main(capsys, ["train", str(ROOT / recipe), "--init-from", MLF, "--check"])
    assert code == 0 and ": ok, " in out, err


@pytest.mark.slow
@pytest.mark.parametrize("argv,expected", [
    (["--dataset", "fashion_mnis"], "zoo eval: unknown data set 'fashion_mnis'; similar: fashion_mnist."),
    (["--dataset", "fashion_mnist", "--data-dir", "no/such/folder"], "zoo eval: fashion_mnist: native files not found"),
    (["--dataset", "fashion_mnist"], "On the command line: --data-dir DIR."),
])
def test_eval_input_errors_are_one_line(capsys, monkeypatch, tmp_path, argv, expected):
    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    line = one_line_error(capsys, ["eval", MLF, "--limit", "8", "--out", str(tmp_path), *argv])
    assert expected in line


@pytest.mark.slow
def test_train_without_data_dir_names_the_option(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    recipe = ROOT / "recipes/lif_spiking_convnet_fashion_mnist_t4_c32.yaml"
    line = one_line_error(capsys, ["train", str(recipe), "--out", str(tmp_path / "run"), "--stop-after", "1"])
    assert line.startswith("zoo train: fashion_mnist: no data folder given") and line.endswith(
        "On the command line: --data-dir DIR.")


def test_a_reader_that_goes_away_is_not_an_error():
    """``zoo info ARCH | head -1``: the pipe closes before zoo writes; no message, exit 141 (SIGPIPE)."""
    process = subprocess.Popen([sys.executable, "-m", "zoo.cli", "info", "spiking_vgg7"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # before zoo has started: its first write meets a closed pipe
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141 and err == "", err


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_command_has_help(capsys, command):
    code, out, _ = zoo_main(capsys, [command, "--help"])
    assert code == 0 and f"usage: zoo {command}" in out
    description = out.split("\n\n")[1]  # the paragraph after the usage, before the arguments
    assert not description.lstrip().startswith(("positional arguments", "options")), out


def test_the_help_lists_every_command(capsys):
    code, out, _ = zoo_main(capsys, ["--help"])
    assert code == 0 and all(f"    {name}" in out for name in cli.COMMANDS)
    full = cli.build_parser(None)  # every command's full parser
    assert sorted(full._subparsers._group_actions[0].choices) == sorted(cli.COMMANDS)


def test_train_backend_choices_are_the_neuron_backends():
    from zoo.neurons.backends import BACKENDS
    from zoo.train import cli as train_cli

    assert train_cli.BACKEND_CHOICES == BACKENDS


# ---- zoo info ------------------------------------------------------------------------------------


def test_info_describes_the_checkpoint_not_the_default_network(capsys):
    code, out, err = zoo_main(capsys, ["info", MLF])
    assert code == 0, err
    assert f"{MLF}: checkpoint of spiking_convnet" in out
    assert "parameters: 25,322 " in out  # the default spiking_convnet has 211,850
    assert "neuron: mlf(levels=3, v_th=0.6, tau=0.25, width=1.0)" in out and "\nT: 4\n" in out
    assert "  channels = 32" in out and "dataset: fashion_mnist, train split, 60,000 samples" in out
    assert "recipes/mlf_spiking_convnet_fashion_mnist_t4_c32.yaml" in out
    assert "fashion_mnist/test T=4: top-1 89.29 %" in out
    assert f"source: local Hub mirror {ROOT / 'hub' / 'snnzoo' / MLF}" in out
    entry = catalog.published()[MLF]
    assert f"sha256 {entry.sha256}: matches" in out and f"sha256 {entry.config_sha256}: matches" in out


def test_info_of_a_checkpoint_folder(capsys):
    folder = ROOT / "hub" / "snnzoo" / MLF
    code, out, _ = zoo_main(capsys, ["info", str(folder)])
    assert code == 0 and f"source: checkpoint folder {folder}" in out and "(recorded in its config): matches" in out


def test_info_names_where_a_chained_checkpoint_started(capsys, tmp_path):
    child = "spiking_convnet.if_converted_finetuned_fashion_mnist_t2_c32"
    parent = "spiking_convnet.if_converted_fashion_mnist_t4_c32"
    code, out, _ = zoo_main(capsys, ["info", child])
    assert code == 0 and f"\nstarted from: {parent} (weights sha256 {catalog.published()[parent].sha256})\n" in out
    config = json.loads((ROOT / "hub" / "snnzoo" / child / "config.json").read_text())
    config["metrics"]["lineage"]["before_training"] = {"T": 2, "top1": 80.5, "converted_T": 4, "converted_top1": 81.25}
    (tmp_path / "config.json").write_text(json.dumps(config))
    code, out, _ = zoo_main(capsys, ["info", str(tmp_path)])
    assert code == 0 and "; before this run: top-1 80.50 % at T=2, 81.25 % converted to T=4\n" in out


def test_info_without_the_mirror_names_the_hub_pins(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_HUB_MIRROR", str(tmp_path))
    code, out, _ = zoo_main(capsys, ["info", MLF])
    entry = catalog.published()[MLF]
    assert code == 0 and f"Hub repository {entry.hf_hub_id} at revision {entry.revision}" in out
    assert "not in the local Hub mirror" in out and entry.sha256 in out


@pytest.mark.slow
def test_parameter_counts_from_the_header_equal_the_loaded_models():
    for name, entry in catalog.published().items():
        folder = catalog.mirror_folder(entry)
        if folder is None:
            continue
        model = zoo.create_model(name, pretrained=True)
        assert catalog.tensor_counts(folder / catalog.WEIGHTS).parameters == archfacts.count_params(model), name
        neuron = json.loads((folder / catalog.CONFIG).read_text())["arch_kwargs"]["neuron"]
        assert info.format_spec(neuron) == specs.format(specs.parse(neuron)), name


# ---- zoo info ARCH: the architecture facts file --------------------------------------------------


@pytest.mark.slow
def test_the_architecture_facts_file_is_current():
    """Every registered architecture, built and measured now, gives what zoo/architectures.json holds."""
    stored = json.loads(catalog.FACTS_FILE.read_text(encoding="utf-8"))
    fresh = archfacts.measure_all()
    stale = sorted(set(stored["architectures"]) ^ set(fresh["architectures"]) | {
        arch for arch in set(stored["architectures"]) & set(fresh["architectures"])
        if stored["architectures"][arch] != fresh["architectures"][arch]})
    assert not stale and stored == fresh, (
        f"{catalog.FACTS_FILE} is stale for {', '.join(stale) or 'its header'}: run `{catalog.FACTS_COMMAND}`")
    assert catalog.FACTS_FILE.read_text(encoding="utf-8") == archfacts.dumps(fresh), \
        f"{catalog.FACTS_FILE} is not as written: run `{catalog.FACTS_COMMAND}`"


def test_info_of_an_architecture_reads_the_facts_and_says_what_it_is(capsys):
    code, out, err = zoo_main(capsys, ["info", "spiking_vgg7"])
    facts = catalog.architecture_facts()["spiking_vgg7"]
    assert code == 0, err
    assert out.startswith(f"spiking_vgg7: {facts['class']}\n  Spiking VGG-7") and f"parameters: {facts['parameters']:,}\n" in out
    assert "spiking_vgg7.if_converted_cifar10_t8" in out  # its published checkpoints, from the registry
    assert all(f"\n{name} " in out for name, *_ in facts["modules"])


def test_info_of_an_architecture_the_file_lacks_or_at_another_depth_builds_it(capsys, monkeypatch):
    code, from_file, _ = zoo_main(capsys, ["info", "spiking_convnet"])
    monkeypatch.setattr(catalog, "architecture_facts", lambda path=None: {})
    code_built, built, _ = zoo_main(capsys, ["info", "spiking_convnet"])
    assert code == code_built == 0 and built == from_file
    deeper = archfacts.measure("spiking_convnet", depth=3)
    stored = json.loads(catalog.FACTS_FILE.read_text(encoding="utf-8"))["architectures"]["spiking_convnet"]
    assert [row for row in deeper["modules"] if row[0].count(".") < catalog.FACTS_DEPTH] == stored["modules"]
    assert any(row[0].count(".") == 2 for row in deeper["modules"])
    code, out, _ = zoo_main(capsys, ["info", "spiking_convnet", "--depth", "3"])
    assert code == 0 and all(f"\n{name} " in out for name, *_ in deeper["modules"])


@pytest.mark.parametrize("damage,expected", [
    (lambda table: {**table, "format": 99}, "not architecture facts of format 1 at depth 2"),
    (lambda table: {**table, "depth": 3}, "not architecture facts of format 1 at depth 2"),
    (lambda table: {**table, "architectures": {"spiking_vgg7": {"class": "x"}}}, "'spiking_vgg7' has not the fields"),
])
def test_a_damaged_facts_file_is_one_line_naming_the_command(capsys, monkeypatch, tmp_path, damage, expected):
    path = tmp_path / "architectures.json"
    path.write_text(json.dumps(damage(json.loads(catalog.FACTS_FILE.read_text(encoding="utf-8")))))
    monkeypatch.setattr(catalog, "FACTS_FILE", path)
    line = one_line_error(capsys, ["info", "spiking_vgg7"])
    assert line.startswith(f"zoo info: {path}: ") and expected in line and catalog.FACTS_COMMAND in line
