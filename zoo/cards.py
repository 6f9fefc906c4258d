"""Model cards, generated from a checkpoint's config and its recorded evaluations (never by hand).

The card is the Hub repository's ``README.md``: Hugging Face metadata front matter (library,
license, tags, datasets and a ``model-index`` with the measured results) followed by what the
checkpoint is, how to load it, what it measured and how to reproduce every number. A config
whose recorded metrics or recipe cannot be rendered (a wrong type inside ``metrics.train``, say)
fails with one ConfigError naming the file and the field.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from .catalog import architecture_facts
from .config import CheckpointConfig, ConfigError
from .evaluation.references import LABEL, Reference
from .names import default_repo_id

# Neurons whose semantics are the project's interpretation of a paper (methods.md sections 3, 4).
INTERPRETATIONS = {
    "multibit": "Multi-bit spikes (Xiao et al. 2024, arXiv 2407.05739): the exact equations are not public; "
                "snnzoo's interpretation is s = V_th * clip(floor(u/V_th * 2^n)/2^n, 0, 2^m - 2^-n) with a soft "
                "reset by s (see `zoo/neurons/multibit.py`).",
    "noisy_if": "Noise-based T=1 training (Jiang & Zhang 2023, arXiv 2211.05453): the exact equations are not "
                "public; snnzoo trains with o = V_th * H(z + eps - V_th), eps ~ N(mu V_th, (sigma V_th)^2), and "
                "converts to an IF neuron with soft reset and u[0] = mu V_th (see `zoo/neurons/noisy_if.py`).",
}
# what ``zoo train`` records in ``metrics["train"]`` (zoo/train/export.py) and the card reports
TRAIN_KEYS = {"epochs", "device", "processes", "precision", "train_time_s", "wall_time_s", "images_per_s",
              "peak_memory_mb", "test_top1", "test_samples"}
DATASET_TITLES = {
    "mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
    "imagenet": "ImageNet", "nmnist": "N-MNIST", "dvs128_gesture": "DVS128 Gesture", "cifar10_dvs": "CIFAR10-DVS",
}


def evaluations(config: CheckpointConfig) -> list[dict[str, Any]]:
    """The evaluation records (``evaluation/`` harness output) stored in the config's metrics."""
    return list(config.metrics.get("evaluations", []))


def headline(config: CheckpointConfig) -> dict[str, Any] | None:
    """The evaluation at the checkpoint's own T on the test split, if recorded."""
    at_t = [r for r in evaluations(config) if r.get("T") == config.T]
    return at_t[0] if at_t else None


def neuron_of(config: CheckpointConfig) -> str:
    """The name of the checkpoint's neuron (its spec is a name or a dict with one)."""
    neuron = config.arch_kwargs["neuron"]
    return neuron["name"] if isinstance(neuron, dict) else str(neuron).split("(")[0]


def render_card(config: CheckpointConfig, hf_hub_id: str, source: str = "config",
                papers: Sequence[Reference] = ()) -> str:
    """The model card of ``config`` for the Hub repository ``hf_hub_id`` (``source`` names the
    config file in errors); ``papers``: the method's published results on the data set
    (:func:`zoo.evaluation.references.papers_for`), set beside the checkpoint's own."""
    neuron_name = neuron_of(config)
    dataset = config.dataset["name"]
    title = DATASET_TITLES.get(dataset, dataset)
    records = evaluations(config)
    front = _guarded(source, "metrics.evaluations", _front_matter, config, hf_hub_id, neuron_name, title, records)
    example = _example_input(config, title)  # its import line first
    provenance = _guarded(source, "recipe.convert or metrics.lineage", _provenance, config)
    training = _guarded(source, "metrics.train", _training, config)
    results = _guarded(source, "metrics.evaluations", _results_table, records)
    against = _guarded(source, "metrics.evaluations", _against_papers, config, papers)
    reproduce = _guarded(source, "metrics.evaluations", _reproduce, config, records)
    return "\n".join([
        front,
        f"# {config.name}",
        "",
        f"A spiking neural network from [snnzoo](https://github.com/snnzoo/snnzoo): `{config.architecture}` with "
        f"`{neuron_name}` neurons at T={config.T}, trained on {title} by the recipe below. {provenance} "
        "Every number on this card was measured by snnzoo's evaluation harness on these weights; the commands "
        "to reproduce them are below.",
        "",
        *([f"> **Interpretation.** {INTERPRETATIONS[neuron_name]}", ""] if neuron_name in INTERPRETATIONS else []),
        "## Use",
        "",
        "```python",
        "import zoo",
        *example[:1],
        *_load_lines(config, hf_hub_id),
        "transform = model.transforms()  # the input transform every number below was measured with",
        *example[1:],
        "logits = model(x)  # [1, num_classes], averaged over T",
        "```",
        "",
        "## Model",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | `{config.architecture}` |",
        f"| architecture kwargs | `{json.dumps(config.arch_kwargs, sort_keys=True)}` |",
        f"| time steps T | {config.T} |",
        f"| input | {_describe_input(config)} |",
        f"| dataset | {title}, `{json.dumps(config.dataset, sort_keys=True)}` |",
        f"| weights sha256 | `{config.weights_sha256}` |",
        f"| software | {', '.join(f'{k} {v}' for k, v in config.software.items())} |",
        "",
        "## Results (measured)",
        "",
        *results,
        "",
        *against,
        "Energy uses 0.9 pJ per accumulate (AC) and 4.6 pJ per multiply-accumulate (MAC), 45 nm "
        "(Horowitz 2014); "
        + ("the first layer's analog input is counted as MACs, every other synaptic layer as ACs"
           if config.input.encoding == "direct" else "every synaptic layer, the first included (its input is event counts), as ACs")
        + " = the exact number of (non-zero input, synapse) pairs (`zoo/evaluation/counters.py`).",
        "",
        *training,
        "## Training recipe",
        "",
        "```json",
        json.dumps(config.recipe, indent=2, sort_keys=True),
        "```",
        "",
        "## Reproduce",
        "",
        *reproduce,
        "",
    ])


def _guarded(source: str, field: str, render: Any, *args: Any) -> Any:
    """``render(*args)``, with a value of the wrong type or shape in ``field`` reported as such."""
    try:
        return render(*args)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        raise ConfigError(f"{source}: field {field!r} cannot be rendered into the model card "
                          f"({type(error).__name__}: {error})") from None


def _front_matter(config: CheckpointConfig, hf_hub_id: str, neuron_name: str, title: str,
                  records: list[dict[str, Any]]) -> str:
    # JSON is valid YAML: every value below is written with json.dumps so quoting is always right.
    lines = ["---", "library_name: snnzoo", "license: apache-2.0", "pipeline_tag: image-classification",
             "tags:"]
    lines += [f"- {json.dumps(tag)}" for tag in
              ("spiking-neural-network", "snn", "snnzoo", neuron_name, config.architecture)]
    lines += ["datasets:", f"- {json.dumps(config.dataset['name'])}", "model-index:",
              f"- name: {json.dumps(hf_hub_id)}", "  results:"]
    for record in records:
        label = f"top-1 accuracy (T={record['T']})"
        lines += ["  - task:", "      type: image-classification",
                  "    dataset:", f"      name: {json.dumps(title)}", f"      type: {json.dumps(config.dataset['name'])}",
                  f"      split: {json.dumps(record.get('split', 'test'))}",
                  "    metrics:", "    - type: accuracy", f"      value: {record['top1']}",
                  f"      name: {json.dumps(label)}"]
    if not records:
        lines[-1] = "  results: []"
    lines.append("---")
    return "\n".join(lines)


def _provenance(config: CheckpointConfig) -> str:
    """How the weights came to be: BPTT, ANN->SNN conversion or T=1 -> T=N (``recipe.convert``)."""
    convert = config.recipe.get("convert") or {}
    kind = convert.get("kind")
    if kind in ("qcfs_to_if", "qcfs_to_multibit"):
        neuron = config.arch_kwargs.get("neuron", {})
        start = f"u[0] = {neuron['v_init']} V_th" if isinstance(neuron, dict) and neuron.get("v_init") else ""
        target = ("an IF neuron" if kind == "qcfs_to_if" else "a multi-bit spiking neuron") + " with soft reset"
        target += f" and {start}" if start else ""
        source = config.recipe.get("model", {}).get("arch", "its ANN twin")
        return (f"The weights come from ANN->SNN conversion: the ANN twin `{source}` with quantised clip-floor "
                f"(QCFS) activations was trained, then each activation became {target}, its threshold folded "
                "into the weights (`zoo/convert/qcfs.py`).")
    if kind == "noisy_t1_to_tn":
        text = (f"The weights were trained at T=1 with noisy IF neurons and run here at T={config.T} as IF "
                "neurons (`zoo/convert/noise.py`).")
        calibration = config.metrics.get("train", {}).get("conversion", {}).get("bn_recalibration")
        if calibration:
            text += (f" Then every BatchNorm's running statistics were re-estimated on {calibration['images']:,} "
                     f"training images with the network running T={calibration['T']} steps, no learned parameter "
                     "changed (`zoo/convert/batchnorm.py`; the zoo's addition, not the paper's).")
        return text
    lineage = config.metrics.get("lineage")
    if isinstance(lineage, dict):
        frozen = len(lineage.get("frozen", []))
        fresh = ", ".join(f"`{key}`" for key in lineage.get("fresh", [])) or "none"
        return (f"The weights are fine-tuned (backpropagation through time with surrogate gradients) from the "
                f"checkpoint `{lineage['name']}` (`{lineage['checkpoint']}`, weights sha256 "
                f"`{lineage['weights_sha256']}`, verified by {lineage['pinned_by']}): {lineage['copied']} tensors "
                f"copied, started fresh: {fresh}; {frozen} parameter tensors frozen (`zoo/train/init.py`).")
    return "The weights are SNN-trained: backpropagation through time with surrogate gradients."


def before_training(before: dict[str, Any]) -> str:
    """A chained run's starting point (``metrics.lineage.before_training``): ``X % at T=a`` and, where
    the run converts, ``, Y % converted to T=b``."""
    converted = (f", {before['converted_top1']:.2f} % converted to T={before['converted_T']}"
                 if "converted_top1" in before else "")
    return f"{before['top1']:.2f} % at T={before['T']}{converted}"


def _chain(lineage: dict[str, Any], chain_train_time_s: float | None) -> list[str]:
    """What a chained run started from: its parent's weights as the run runs them, and the cost of
    the whole chain."""
    said = []
    before = lineage.get("before_training")
    if before is not None:
        said.append(f"Before it, those weights scored {before_training(before)} on the same test set.")
    if chain_train_time_s is not None:
        said.append(f"With the stages before it, the whole chain took {chain_train_time_s / 60:.1f} min of training "
                    f"steps ({lineage['earlier_train_time_s'] / 60:.1f} min before this run).")
    return [f"The run started from `{lineage['name']}`. {' '.join(said)}", ""] if said else []


def _training(config: CheckpointConfig) -> list[str]:
    """The measured cost of the training run and, for converted networks, accuracy against T."""
    train = config.metrics.get("train") or {}
    if not TRAIN_KEYS <= train.keys():
        return []
    lines = [
        "## Training (measured)",
        "",
        f"{train['epochs']} epoch{'s' if train['epochs'] > 1 else ''} on {train['device']} ({train['processes']} "
        f"process{'es' if train['processes'] > 1 else ''}, {train['precision']}): "
        f"{train['train_time_s'] / 60:.1f} min of training steps ({train['wall_time_s'] / 60:.1f} min with the "
        f"per-epoch evaluations), {train['images_per_s']:.0f} images/s, peak memory {train['peak_memory_mb']:.0f} MB; "
        f"test top-1 at the end of training {train['test_top1']:.2f} % on {train['test_samples']:,} samples. "
        "The per-epoch log is `train_log.csv` in the Hub repository.",
        "",
    ]
    lineage = config.metrics.get("lineage")
    if isinstance(lineage, dict):
        lines += _chain(lineage, config.chain_train_time_s)
    conversion = train.get("conversion")
    if conversion:
        sweep = conversion["accuracy_vs_T"]
        lines += [f"Conversion (`{conversion['kind']}`): the trained network reached {conversion['source_top1']:.2f} % "
                  f"at T={conversion['source_T']}; the converted network, against T:", "",
                  "| T | " + " | ".join(sweep) + " |", "|---|" + "---|" * len(sweep),
                  "| top-1 % | " + " | ".join(f"{v:.2f}" for v in sweep.values()) + " |", ""]
    return lines


def _load_lines(config: CheckpointConfig, hf_hub_id: str) -> list[str]:
    """How to load the checkpoint: by its zoo name when it is the zoo's own repository, else by Hub id."""
    if hf_hub_id != default_repo_id(config.name):
        return [f"model = zoo.create_model('hf-hub:{hf_hub_id}', pretrained=True).eval()"]
    return [f"model = zoo.create_model({config.name!r}, pretrained=True).eval()",
            f"# or: torch.hub.load('snnzoo/snnzoo', {config.architecture!r}, pretrained={config.name.split('.', 1)[1]!r})"]


EVENT_READERS = {  # data set -> (module, reader of one native recording, an example file name)
    "nmnist": ("zoo.data.events.nmnist", "read_nmnist_bin", "Test/0/00004.bin"),
    "cifar10_dvs": ("zoo.data.events.cifar10_dvs", "read_cifar10_dvs", "airplane/cifar10_airplane_900.aedat"),
}


def _example_input(config: CheckpointConfig, title: str) -> list[str]:
    """One real input through the checkpoint's transform (:mod:`zoo.transforms`), as a batch of 1:
    the import it needs, then the lines."""
    size = "x".join(map(str, config.input.size))
    if config.input.encoding == "direct":
        return ["from PIL import Image",
                f"x = transform(Image.open('image.png')).unsqueeze(0)  # a {title} image -> normalised [1, {size}]"]
    frames = "1 frame, repeated over T" if config.input.encoding == "repeated_frame" else "T frames, time first"
    module, reader, file = EVENT_READERS.get(config.dataset["name"], ("zoo.data.events", "make_events", "..."))
    return [f"from {module} import {reader}",
            f"events = {reader}({file!r})  # one {title} recording: t, x, y, p",
            f"x = transform(events).unsqueeze(1)  # event counts, {frames}: [F, 1, {size}]"]


def _describe_input(config: CheckpointConfig) -> str:
    size = "x".join(map(str, config.input.size))
    if config.input.encoding == "direct":
        norm = f", normalised with mean {config.input.mean} and std {config.input.std}" if config.input.mean else ""
        return f"static image {size} repeated over T (direct encoding){norm}"
    if config.input.encoding == "repeated_frame":
        return f"event frame {size}: the whole recording integrated into one frame, repeated over T (see dataset integration parameters)"
    return f"event frames [T, {size}]: the recording integrated into T frames, one per step (see dataset integration parameters)"


RESULT_COLUMNS = (
    ("T", "T", "{}"), ("split", "split", "{}"), ("samples", "samples", "{:,}"), ("top1", "top-1 %", "{:.2f}"), ("top5", "top-5 %", "{:.2f}"),
    ("firing_rate", "firing rate", "{:.4f}"), ("sops_per_sample", "SOPs / sample", "{:.3g}"),
    ("energy_uj_per_sample", "energy µJ / sample", "{:.3g}"), ("latency_ms", "latency ms / batch", "{:.1f}"),
    ("device", "device", "{}"),
)


def _results_table(records: list[dict[str, Any]]) -> list[str]:
    if not records:
        return ["No evaluation recorded yet."]
    columns = [c for c in RESULT_COLUMNS if any(c[0] in r for r in records)]
    rows = ["| " + " | ".join(header for _, header, _ in columns) + " |",
            "|" + "---|" * len(columns)]
    for record in sorted(records, key=lambda r: (r.get("split", ""), r.get("T", 0))):
        cells = [fmt.format(record[key]) if record.get(key) is not None else "" for key, _, fmt in columns]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _against_papers(config: CheckpointConfig, papers: Sequence[Reference]) -> list[str]:
    """The method's published results beside this checkpoint: networks, parameters, T and the gap."""
    own = headline(config)
    if not papers or own is None:
        return []
    facts = architecture_facts()
    widths = config.arch_kwargs.get("widths")
    network = f"`{config.architecture}`" + (f" ({'-'.join(map(str, widths))})" if widths else "")
    rows = ["## Against the paper", "",
            f"The method's published results on this data set ({LABEL}: as recalled, not checked against the "
            "paper), beside this checkpoint at its own T:", "",
            "| | network | parameters | T | top-1 |", "|---|---|---|---|---|"]
    params = {ref: facts.get(ref.match_arch, {}).get("parameters") for ref in papers}  # None: not a registry name
    for ref in papers:
        rows.append(f"| {ref.source} | {ref.architecture} | {f'{params[ref] / 1e6:.2f} M' if params[ref] else ''} "
                    f"| {ref.T} | {ref.top1:.2f} % |")
    rows += [f"| this checkpoint | {network} | {own['params'] / 1e6:.2f} M | {config.T} | {own['top1']:.2f} % |", ""]
    ref = min(papers, key=lambda r: (abs(r.T - config.T), r.T))  # the paper's result nearest this T
    size = f"{own['params'] / params[ref]:.2f} times the parameters of the paper's network, " if params[ref] else ""
    gap = ref.top1 - own["top1"]
    rows += [f"This network has {size}and is {abs(gap):.2f} points {'below' if gap > 0 else 'above'} its "
             f"{ref.top1:.2f} % at T={ref.T}.", ""]
    return rows


def _reproduce(config: CheckpointConfig, records: list[dict[str, Any]]) -> list[str]:
    lines = ["```bash"]
    recipe_file = config.recipe.get("file")
    if recipe_file:
        lines.append(f"zoo train {recipe_file}")
    commands = sorted({r["command"] for r in records if r.get("command")})
    lines += commands or [f"zoo eval {config.name} --dataset {config.dataset['name']}"]
    lines.append("```")
    return lines
