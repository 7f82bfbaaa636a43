"""The reproduction index: every table and figure of the source papers that mlts reruns.

A `Run` is one existing study config; a `Row` is one paper item (a table, a
column of it, or a figure) with its published values, the run and file that
reproduce it, a function that reads mlts's value from that run's saved results,
and one line on why the two differ. `experiments/reproduce.py` executes the runs
and `render` writes REPRODUCTION.md from whatever results exist: nothing in the
table is typed by hand except the published values and the explanations.

Papers (../shared/papers/): COGNOS (002), β-VAEGAN (001), the worked β-VAE example
(003) and the proposal (000), which publishes objectives but no numbers; its
generation objective is measured on the benchmarks of Diffusion-TS (ICLR 2024),
whose Table 1 is the published reference there.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import time
from typing import Callable

from mlts.studies import generation as generation_study  # Diffusion-TS's published Table 1

ROOT = str(pathlib.Path(__file__).resolve().parent.parent)
BUDGETS = ("tiny", "quick", "standard")
_VARIANT = {"tiny": "tiny", "quick": "quick", "standard": ""}


@dataclasses.dataclass(frozen=True)
class Run:
  """One study run: `config` at each budget's variant (None where the config has none)."""
  name: str
  config: str  # path relative to the repository root
  quick_seconds: float  # wall time of the quick run on 2 CPU cores (ETA)
  budgets: tuple[str, ...] = BUDGETS
  standard_factor: float = 3.0  # standard / quick wall time, for the ETA

  def config_arg(self, budget: str) -> str:
    if budget not in self.budgets:
      raise ValueError(f"run {self.name!r} has no {budget!r} variant ({self.config})")
    variant = _VARIANT[budget]
    return f"{self.config}:{variant}" if variant else self.config

  def expected_seconds(self, budget: str) -> float:
    return {"tiny": 0.05, "quick": 1.0, "standard": self.standard_factor}[budget] * (
        self.quick_seconds)


@dataclasses.dataclass(frozen=True)
class Row:
  """One paper item."""
  id: str
  paper: str  # 'COGNOS (002)', ...
  item: str  # the paper's table / figure and what it shows
  published: str
  run: str | None  # a Run name, None where nothing here can reproduce it
  output: str  # file in the run's directory the value comes from
  value: Callable[[str], str] | None  # run directory -> mlts's value, markdown
  why: str  # why mlts's value differs from the published one


# ----------------------------------------------------------------------------
# Reading saved results.

class MissingResult(Exception):
  """A run directory lacks a file or key that a row reads."""


def _json(run_dir: str, name: str) -> dict:
  path = os.path.join(run_dir, name)
  if not os.path.isfile(path):
    raise MissingResult(f"{name} not found")
  with open(path) as f:
    return json.load(f)


def _get(tree, *keys):
  for key in keys:
    try:
      tree = tree[key]
    except (KeyError, IndexError, TypeError):
      raise MissingResult(f"no {'/'.join(map(str, keys))}") from None
  return tree


def _f(v, digits: int = 3) -> str:
  if v is None or (isinstance(v, float) and not math.isfinite(v)):
    return "–"
  return f"{v:.{digits}f}"


def _ms(pair, digits: int = 3) -> str:
  """[mean, std] as 'm ± s'."""
  if pair is None or pair[0] is None:
    return "–"
  return f"{_f(pair[0], digits)} ± {_f(pair[1], digits)}"


def _file(name: str) -> Callable[[str], str]:
  def value(run_dir: str) -> str:
    if not os.path.isfile(os.path.join(run_dir, name)):
      raise MissingResult(f"{name} not found")
    return f"figure: `{name}`"
  return value


# COGNOS ----------------------------------------------------------------------

_VANILLA, _COGNOS = "mse/none", "gwnr/arks"


def _cognos_backbones(report: dict) -> list[str]:
  return list(_get(report, "grid", "backbones"))


def _cognos_suite(run_dir: str) -> str:
  """Vanilla (MSE, no post-processing) → COGNOS (GWNR + ARKS) per backbone, Table 1's metrics."""
  report = _json(run_dir, "ablation.json")
  lines = []
  for b in _cognos_backbones(report):
    v = _get(report, "methods", f"{b}/{_VANILLA}", "summary")
    c = _get(report, "methods", f"{b}/{_COGNOS}", "summary")
    pair = {k: f"{_f(v[k])}→{_f(c[k])}" for k in ("F1", "PA-F1", "Aff-F1", "R-AUC-ROC",
                                                   "R-AUC-PR", "VUS-ROC", "VUS-PR")}
    lines.append(f"{b}: F1 {pair['F1']}, PA-F1 {pair['PA-F1']}, Aff-F1 {pair['Aff-F1']}, "
                 f"R-A-R {pair['R-AUC-ROC']}, R-A-P {pair['R-AUC-PR']}, V-R {pair['VUS-ROC']}, "
                 f"V-P {pair['VUS-PR']}")
  random = _get(report, "methods", "random", "summary")
  lines.append(f"random score: F1 {_f(random['F1'])}, PA-F1 {_f(random['PA-F1'])}, "
               f"Aff-F1 {_f(random['Aff-F1'])}")
  return "<br>".join(lines)


def _mean(values) -> float:
  values = [v for v in values if v is not None]
  return sum(values) / len(values) if values else float("nan")


def _cognos_aff(run_dir: str) -> str:
  """Table 2: Aff-F1 of every backbone, vanilla → COGNOS, and the average."""
  report = _json(run_dir, "ablation.json")
  backbones = _cognos_backbones(report)
  van = [_get(report, "methods", f"{b}/{_VANILLA}", "summary", "Aff-F1") for b in backbones]
  cog = [_get(report, "methods", f"{b}/{_COGNOS}", "summary", "Aff-F1") for b in backbones]
  parts = [f"{b} {_f(x)}→{_f(y)}" for b, x, y in zip(backbones, van, cog)]
  random = _get(report, "methods", "random", "summary", "Aff-F1")
  return (f"AVG {_f(_mean(van))}→{_f(_mean(cog))}<br>" + ", ".join(parts)
          + f"<br>random score {_f(random)}")


_ABLATION_CELLS = (("vanilla", "mse/none"), ("+ARKS", "mse/arks"), ("GWNR", "gwnr/none"),
                   ("GWNR+MA", "gwnr/ma"), ("GWNR+LP", "gwnr/lp"), ("GWNR+ARKS", "gwnr/arks"))


def _cognos_ablation(run_dir: str) -> str:
  """Table 3: the six loss × filter cells, PA-F1 (F1) / Aff-F1, mean over backbones."""
  report = _json(run_dir, "ablation.json")
  backbones = _cognos_backbones(report)
  out = []
  for label, cell in _ABLATION_CELLS:
    rows = [_get(report, "methods", f"{b}/{cell}", "summary") for b in backbones]
    out.append(f"{label}: PA-F1 {_f(_mean([r['PA-F1'] for r in rows]))} "
               f"(F1 {_f(_mean([r['F1'] for r in rows]))}) / Aff-F1 "
               f"{_f(_mean([r['Aff-F1'] for r in rows]))}")
  return "<br>".join(out) + f"<br>(mean over {', '.join(backbones)})"


def _cognos_cost(run_dir: str) -> str:
  """Table 4 / appendix Table 10: training ms per step, MSE vs GWNR, and ms per point."""
  cost = _get(_json(run_dir, "ablation.json"), "cost")
  lines = []
  for key in [k for k in cost if k.endswith("/mse")]:
    b = key.split("/")[0]
    mse, gwnr = cost[key], cost.get(f"{b}/gwnr")
    if gwnr is None:
      continue
    extra = gwnr["ms_per_step"] - mse["ms_per_step"]
    lines.append(f"{b}: {_f(mse['ms_per_step'], 1)} → {'–' if extra != extra else f'{extra:+.1f}'}"
                 f" ms/step (×{_f(gwnr['ms_per_step'] / mse['ms_per_step'], 2)}); "
                 f"{_f(mse['score_ms_per_point'], 4)} ms/point")
  if not lines:
    raise MissingResult("no mse/gwnr pair in cost")
  return "<br>".join(lines)


def _cognos_confidence(run_dir: str) -> str:
  sweep = _get(_json(run_dir, "ablation.json"), "confidence_sweep")
  rows = sweep["summary"]
  aff = {c: r["Aff-F1"] for c, r in rows.items()}
  auroc = {c: r["AUROC"] for c, r in rows.items()}
  default = f"{sweep['default']:g}"
  return (f"{sweep['backbone']} + {sweep['loss']} + ARKS, c ∈ [{min(rows, key=float)}, "
          f"{max(rows, key=float)}]: Aff-F1 {_f(min(aff.values()))}–{_f(max(aff.values()))}, "
          f"AUROC {_f(min(auroc.values()))}–{_f(max(auroc.values()))}; at c = {default}: "
          f"Aff-F1 {_f(aff.get(default))}, AUROC {_f(auroc.get(default))}; `confidence.png`")


# β-VAEGAN -------------------------------------------------------------------

_GAN_MODELS = (("beatgan", "BeatGAN"), ("beatgan_plus", "BeatGAN₊"), ("vaegan1", "β-VAEGAN₁"),
               ("vaegan2", "β-VAEGAN₂"))
_ALL_MODELS = (("ae", "AE"), ("vae", "VAE")) + _GAN_MODELS
_COMPOSITIONS = ("λ=0", "λ_GRID", "SVM_λ", "SVM_γ")


def _vaegan_methods(run_dir: str, catalogue) -> list[tuple[str, dict]]:
  """(label, composition -> metrics) of each model of `catalogue` that the run trained."""
  models = _get(_json(run_dir, "results.json"), "models")
  return [(label, models[key]["methods"]) for key, label in catalogue if key in models]


def _vaegan_table2(run_dir: str) -> str:
  """wF1 (mean ± std over folds) of each GAN model under each composition."""
  lines = [f"{label}: " + ", ".join(f"{c} {_ms(_get(methods, c, 'wF1'))}"
                                    for c in _COMPOSITIONS if c in methods)
           for label, methods in _vaegan_methods(run_dir, _GAN_MODELS)]
  if not lines:
    raise MissingResult("no GAN model in results.json")
  return "<br>".join(lines)


def _vaegan_table3(run_dir: str) -> str:
  """F1 (weighted) / φ / AUROC per model under its SVM composition (SVM_γ, or SVM_L)."""
  lines = []
  for label, methods in _vaegan_methods(run_dir, _ALL_MODELS):
    comp = "SVM_γ" if "SVM_γ" in methods else "SVM_L"
    m = _get(methods, comp)
    lines.append(f"{label} ({comp}): wF1 {_ms(m['wF1'])}, φ {_ms(m['MCC'])}, "
                 f"AUROC {_ms(m['AUROC'])}")
  return "<br>".join(lines)


def _vaegan_tstr(run_dir: str) -> str:
  models = _get(_json(run_dir, "results.json"), "models")
  lines = [f"{label}: TSTR {_ms(_get(models, key, 'tstr', 'tstr'))}, TSTR_N "
           f"{_ms(_get(models, key, 'tstr', 'tstr_n'))}"
           for key, label in _ALL_MODELS if key in models and "tstr" in models[key]]
  if not lines:
    raise MissingResult("no TSTR in results.json")
  return "<br>".join(lines)


def _vaegan_chi(run_dir: str) -> str:
  chi = _get(_json(run_dir, "results.json"), "chi")
  return "<br>".join(f"{label}: KS {_f(c['statistic'], 4)}, p = {c['pvalue']:.3g}"
                     for label, c in chi.items()) + "<br>`figures/chi.png`"


# Worked example (003) -------------------------------------------------------

def _vae_model(key: str) -> Callable[[str], str]:
  def value(run_dir: str) -> str:
    m = _get(_json(run_dir, "results.json"), "models", key)
    return (f"AUROC {_f(m['auroc_mean'])} ± {_f(m['auroc_std'])}, AUPRC {_f(m['auprc_mean'])} "
            f"± {_f(m['auprc_std'])}")
  return value


# Proposal (000) --------------------------------------------------------------

_GEN_METRICS = ("context_fid", "correlational", "discriminative", "predictive")
_GEN_NAMES = {"context_fid": "Context-FID", "correlational": "correlational",
              "discriminative": "discriminative", "predictive": "predictive"}


def _generation(run_dir: str) -> str:
  r = _json(run_dir, "results.json")
  lines = []
  for name, block in [*(_get(r, "variants").items()), ("real-data floor", _get(r, "floor"))]:
    lines.append(f"{name}: " + ", ".join(f"{_GEN_NAMES[m]} {_ms(block[m])}"
                                          for m in _GEN_METRICS))
  return "<br>".join(lines)


def _diffusion_detector(run_dir: str) -> str:
  """Per variant the best pooled AUROC over its scores, beside |telemetry| and random."""
  methods = _get(_json(run_dir, "metrics.json"), "methods")
  best: dict[str, tuple[float, str]] = {}
  for name, r in methods.items():
    if not name.startswith("diffusion["):
      continue
    variant, score = name[len("diffusion["):].split("]:")
    auroc = r["summary"]["AUROC"]
    if auroc is not None and auroc > best.get(variant, (-1.0, ""))[0]:
      best[variant] = (auroc, score)
  lines = [f"{v}: AUROC {_f(a)} ({s})" for v, (a, s) in best.items()]
  for base in ("abs_telemetry", "random"):
    if base in methods:
      lines.append(f"{base}: AUROC {_f(methods[base]['summary']['AUROC'])}")
  return "<br>".join(lines)


def _latent_metric(run_dir: str) -> str:
  gen = _get(_json(run_dir, "results.json"), "generation")
  lines = []
  for name, r in gen.items():
    if "lat_fid" in r:
      lines.append(f"{name}: latent FID {_f(r['lat_fid'])}, KID {_f(r.get('lat_kid'), 4)}, "
                   f"discriminative {_f(r.get('discriminative'))}")
  return "<br>".join(lines)


def _features(run_dir: str) -> str:
  types = _get(_json(run_dir, "results.json"), "feature_types")
  return (", ".join(f"{k} {v}" for k, v in types.items())
          + " latent features (DCT coefficients); `features.md`, `features.png`")


def _ood(run_dir: str) -> str:
  tasks = _get(_json(run_dir, "results.json"), "tasks")
  lines = []
  for task, reps in tasks.items():
    cells = []
    for rep, scores in reps.items():
      name, r = max(scores.items(), key=lambda kv: -1.0 if kv[1]["auroc"] is None
                    else kv[1]["auroc"])
      cells.append(f"{rep} {_f(r['auroc'])} ({name}; F1 {_f(r['f1'])}, FPR@95 "
                   f"{_f(r['fpr_at_95tpr'])})")
    lines.append(f"{task}: best AUROC per representation: " + "; ".join(cells))
  return "<br>".join(lines)


# ----------------------------------------------------------------------------
# The index.

RUNS = (
    Run("vae_synthetic", "configs/vae_synthetic.py", 60),
    Run("cognos_smap", "configs/cognos_smap.py", 220, budgets=("quick", "standard")),
    Run("cognos_msl", "configs/cognos_msl.py", 420, budgets=("quick", "standard")),
    Run("vaegan_wafer", "configs/vaegan_wafer.py", 511),
    Run("vaegan_ecg", "configs/vaegan_ecg.py", 481),
    Run("ood_smap", "configs/ood_smap.py", 289),
    Run("ood_msl", "configs/ood_msl.py", 263),
    Run("diffusion_smap", "configs/diffusion_smap.py", 659),
    Run("diffusion_msl", "configs/diffusion_msl.py", 626),
    Run("telemetry_generation_smap", "configs/telemetry_generation_smap.py", 874),
    Run("telemetry_generation_msl", "configs/telemetry_generation_msl.py", 838),
    Run("generation_sines", "configs/generation_sines.py", 550, standard_factor=2.5),
    Run("generation_stock", "configs/generation_stock.py", 484, standard_factor=2.5),
    Run("generation_etth", "configs/generation_etth.py", 482, standard_factor=2.5),
    Run("generation_energy", "configs/generation_energy.py", 679, standard_factor=2.5),
)
RUNS_BY_NAME = {r.name: r for r in RUNS}

_C, _B, _V, _P = "COGNOS (002)", "β-VAEGAN (001)", "β-VAE worked example (003)", "Proposal (000)"
_SERIES_C = ("each channel is its own series with its own validation threshold (the paper "
             "concatenates them); CPU budgets")
_PROTOCOL_C = ("backbones differ (mlts: LSTM-AE, DLinear, ModernTCN, Transformer; the paper: "
               "Autoformer, KAN-AD, TimesNet and others); " + _SERIES_C)

ROWS = (
    # COGNOS ------------------------------------------------------------------
    Row("cognos-t1-smap", _C, "Table 1 (SMAP from appendix Table 7): vanilla → COGNOS on the "
        "full metric suite", "Autoformer Std-F1 0.685→0.783, Aff-F1 0.627→0.852, V-P "
        "0.164→0.149; KAN-AD Aff-F1 0.667→0.849; TimesNet Aff-F1 0.529→0.830 (Std-F1 is "
        "point-adjusted)", "cognos_smap", "ablation.json", _cognos_suite, _PROTOCOL_C),
    Row("cognos-t1-msl", _C, "Table 1: vanilla → COGNOS on the full metric suite (MSL)",
        "Autoformer Std-F1 0.772→0.932, Aff-F1 0.401→0.939, V-P 0.194→0.204; KAN-AD Aff-F1 "
        "0.536→0.916; TimesNet Aff-F1 0.487→0.917", "cognos_msl", "ablation.json",
        _cognos_suite, _PROTOCOL_C),
    Row("cognos-t2-smap", _C, "Table 2: Aff-F1 over backbones, vanilla → COGNOS (SMAP)",
        "AVG of 9 backbones 0.600→0.773", "cognos_smap", "ablation.json", _cognos_aff,
        _PROTOCOL_C + "; the random score's Aff-F1 bounds how much the metric separates"),
    Row("cognos-t2-msl", _C, "Table 2: Aff-F1 over backbones, vanilla → COGNOS (MSL)",
        "AVG of 9 backbones 0.479→0.931", "cognos_msl", "ablation.json", _cognos_aff,
        _PROTOCOL_C + "; the random score's Aff-F1 bounds how much the metric separates"),
    Row("cognos-t3-smap", _C, "Table 3: ablation of GWNR × {none, ARKS, MA, LP} on KAN-AD "
        "(SMAP), Std-F1 / Aff-F1", "vanilla 0.624/0.627, +ARKS 0.604/0.602, GWNR 0.603/0.298, "
        "GWNR+MA 0.365/0.213, GWNR+LP 0.366/0.208, GWNR+ARKS 0.709/0.849", "cognos_smap",
        "ablation.json", _cognos_ablation,
        "mean over mlts's backbones instead of KAN-AD alone; " + _SERIES_C),
    Row("cognos-t3-msl", _C, "Table 3: ablation of GWNR × {none, ARKS, MA, LP} on KAN-AD "
        "(MSL), Std-F1 / Aff-F1", "vanilla 0.813/0.545, +ARKS 0.808/0.529, GWNR 0.870/0.592, "
        "GWNR+MA 0.163/0.256, GWNR+LP 0.166/0.258, GWNR+ARKS 0.917/0.916", "cognos_msl",
        "ablation.json", _cognos_ablation,
        "mean over mlts's backbones instead of KAN-AD alone; " + _SERIES_C),
    Row("cognos-t4-smap", _C, "Table 4 / appendix Table 10: training cost, vanilla → +COGNOS "
        "(SMAP)", "train (ms/iter): Autoformer 96.2 → +41.7, KAN-AD 19.4 → +28.8, TimesNet "
        "145.3 → +183.5; inference ≈ 0.04–0.21 ms/point vanilla, +0.11–0.15 with COGNOS",
        "cognos_smap", "ablation.md", _cognos_cost,
        "2 CPU cores against the paper's GPU, other backbones and batch sizes; ARKS cost is "
        "not in mlts's ms/point (residuals only)"),
    Row("cognos-t4-msl", _C, "Table 4 / appendix Table 10: training cost, vanilla → +COGNOS "
        "(MSL)", "train (ms/iter): Autoformer 65.3 → +210.2, KAN-AD 146.7 → +354.9, TimesNet "
        "97.6 → +308.2; inference 0.15–0.27 ms/point vanilla, +0.08–0.14 with COGNOS",
        "cognos_msl", "ablation.md", _cognos_cost,
        "2 CPU cores against the paper's GPU, other backbones and batch sizes; ARKS cost is "
        "not in mlts's ms/point (residuals only)"),
    Row("cognos-fig3-residuals", _C, "Fig. 3 bottom (and appendix C): residual ACF with the "
        "95% white-noise band and Q-Q plots, MSE vs GWNR", "qualitative: GWNR residuals inside "
        "the band and on the Q-Q line, MSE residuals not", "cognos_smap", "residuals.png",
        _file("residuals.png"), "validation residuals of the first backbone on SMAP"),
    Row("cognos-fig3-traces", _C, "Fig. 3 top (and Figs. 7, 8, 10): anomaly score traces, raw "
        "vs COGNOS", "qualitative: the smoothed score separates the anomaly from the noise",
        "cognos_smap", "arks_trace.png", _file("arks_trace.png"),
        "one SMAP channel, ±300 steps around its first anomaly; with mlts's validation "
        "threshold and predicted events"),
    Row("cognos-fig4-smap", _C, "Fig. 4: sensitivity to the ARKS confidence α (KAN-AD; SMAP "
        "more sensitive than SWAN)", "no numbers in the text (the swept range was lost in "
        "extraction); default α = 0.9", "cognos_smap", "ablation.json", _cognos_confidence,
        "mlts's first backbone with GWNR instead of KAN-AD; pooled metrics"),
    Row("cognos-fig4-msl", _C, "Fig. 4 counterpart on MSL (the paper shows SMAP and SWAN)",
        "–", "cognos_msl", "ablation.json", _cognos_confidence, "not in the paper"),
    Row("cognos-other-datasets", _C, "Tables 1–3: GECCO, PSM, SWAN, SWaT, UCR columns",
        "see the paper", None, "–", None, "these datasets are not shipped with mlts"),
    # β-VAEGAN ----------------------------------------------------------------
    Row("vaegan-t2-wafer", _B, "Table II: weighted F1 of the score compositions (Wafer)",
        "BeatGAN 0.727/0.709/0.570/0.715, BeatGAN₊ 0.972/0.980/0.980/0.982, β-VAEGAN₁ "
        "0.980/0.980/0.979/0.980, β-VAEGAN₂ 0.983/0.984/0.984/0.986 (λ=0 / λ_GRID / SVM_λ / "
        "SVM_γ)", "vaegan_wafer", "results.json", _vaegan_table2,
        "min–max scaling per series, 2 folds at the quick budget (5 in the paper), 400 "
        "generator steps"),
    Row("vaegan-t2-ecg", _B, "Table II, ECG column (the paper uses MITBIH; ECG200 stands in)",
        "MITBIH: BeatGAN 0.854/0.853/0.856/0.878, BeatGAN₊ 0.899/0.899/0.906/0.908, β-VAEGAN₁ "
        "0.905/0.905/0.915/0.914, β-VAEGAN₂ 0.909/0.909/0.920/0.919", "vaegan_ecg",
        "results.json", _vaegan_table2,
        "MITBIH is not available here: ECG200 (200 series) is another dataset"),
    Row("vaegan-t3-wafer", _B, "Table III: F1 / φ (MCC) / AUROC per model (Wafer)",
        "AE 0.978/0.951/0.982, VAE 0.957/0.905/0.964, BeatGAN 0.727/0.378/0.613, BeatGAN₊ "
        "0.982/0.956/0.984, β-VAEGAN₁ 0.980/0.950/0.978, β-VAEGAN₂ 0.986/0.964/0.980",
        "vaegan_wafer", "results.json", _vaegan_table3,
        "mlts reports each model's SVM composition (the paper its best composition); as "
        "Table II"),
    Row("vaegan-t3-ecg", _B, "Table III, ECG column (MITBIH in the paper; ECG200 here)",
        "MITBIH: AE 0.902/0.796/0.900, VAE 0.883/0.757/0.883, BeatGAN 0.878/0.746/0.862, "
        "BeatGAN₊ 0.908/0.808/0.897, β-VAEGAN₁ 0.915/0.822/0.908, β-VAEGAN₂ 0.920/0.832/0.918",
        "vaegan_ecg", "results.json", _vaegan_table3,
        "MITBIH is not available here: ECG200 is another dataset"),
    Row("vaegan-t4-wafer", _B, "Table IV: TSTR / TSTR_N on Wafer", "AE 0.994/0.999, VAE "
        "0.982/0.988, BeatGAN 0.173/0.175, BeatGAN₊ 0.995/1.000, β-VAEGAN₁ 0.995/1.000, "
        "β-VAEGAN₂ 0.996/1.000", "vaegan_wafer", "results.json", _vaegan_tstr,
        "mlts's TSTR train and test windows never overlap; a classifier trained on "
        "reconstructions of abnormal windows, which a normal-only generator makes normal, "
        "cannot find anomalies in disjoint real windows"),
    Row("vaegan-t1-mitbih", _B, "Table I: TSTR on MITBIH", "TSTR 0.738–0.929", None, "–", None,
        "MITBIH is not available here"),
    Row("vaegan-fig4-chi", _B, "Fig. 4: χ fit of latent norms for several β (MITBIH, latent "
        "6)", "β = 0.1: KS 0.0029 (p = 0.89), with posterior collapse; β = 0: no adequate fit",
        "vaegan_wafer", "results.json", _vaegan_chi,
        "Wafer (latent 4) instead of MITBIH, β ∈ {0, 1e-4, 1e-2}"),
    Row("vaegan-fig1-heatmap", _B, "Fig. 1: absolute reconstruction error of normal vs "
        "abnormal beats as a heat map", "qualitative", "vaegan_ecg",
        "figures/error_heatmap_vaegan2.png", _file("figures/error_heatmap_vaegan2.png"),
        "ECG200 instead of MITBIH; β-VAEGAN₂"),
    # Worked example ----------------------------------------------------------
    Row("vae-beta", _V, "results: β-VAE (latent 3, β = 2), score = reconstruction + KL",
        "AUROC 0.91, AUPRC 0.63", "vae_synthetic", "results.json", _vae_model("beta_vae"),
        "mlts scores a held-out chronological test part (the example scores its training "
        "data); mean ± std over seeds"),
    Row("vae-ae", _V, "results: autoencoder baseline (32 hidden units)", "AUROC 0.78, AUPRC "
        "0.42", "vae_synthetic", "results.json", _vae_model("ae"),
        "as the β-VAE row; the example does not show its AE code"),
    # Proposal ----------------------------------------------------------------
    *(Row(f"proposal-generation-{d}", _P, f"Objective 1: generation quality on {label} "
          "(Diffusion-TS Table 1 as the reference)",
          ", ".join(f"{_GEN_NAMES[m]} {_ms(generation_study.PUBLISHED[d][m])}"
                    for m in _GEN_METRICS), f"generation_{d}", "results.json", _generation,
          "CPU budget (2.5k / 8k steps of a small U-Net against Diffusion-TS's GPU "
          "transformer); mean ± std over 3 / 5 runs")
      for d, label in (("sines", "Sines"), ("stock", "Stocks"), ("etth", "ETTh1"),
                       ("energy", "Energy"))),
    *(Row(f"proposal-detector-{s}", _P, f"Objectives 1 and 3: the malleable-latent diffusion "
          f"detector and its ablation ({s.upper()})", "no numbers (objectives only)",
          f"diffusion_{s}", "metrics.json", _diffusion_detector,
          "no published value; `scores.png` shows the traces") for s in ("smap", "msl")),
    *(Row(f"proposal-latent-metric-{s}", _P, f"Objective 2: a latent metric separating real "
          f"from generated telemetry ({s.upper()})", "no numbers (objectives only)",
          f"telemetry_generation_{s}", "results.json", _latent_metric,
          "no published value; held-out real is the floor") for s in ("smap", "msl")),
    *(Row(f"proposal-features-{s}", _P, f"Feature characterization: latent features common, "
          f"real-only and synthetic-only ({s.upper()})", "no numbers (objectives only)",
          f"telemetry_generation_{s}", "results.json", _features, "no published value")
      for s in ("smap", "msl")),
    *(Row(f"proposal-ood-{s}", _P, f"Objective 3: OOD detection in latent spaces "
          f"({s.upper()}; AUROC, F1, FPR)", "no numbers (objectives only)", f"ood_{s}",
          "results.json", _ood, "no published value; `eigenmap.png` shows the latent map")
      for s in ("smap", "msl")),
)


def select(only) -> tuple[list[Row], list[Run]]:
  """Rows and runs named by `only` (run names or row ids; empty = everything), in index order.

  Raises:
    ValueError: a name that is neither a run nor a row.
  """
  if not only:
    return list(ROWS), list(RUNS)
  row_ids = {r.id for r in ROWS}
  unknown = [n for n in only if n not in RUNS_BY_NAME and n not in row_ids]
  if unknown:
    raise ValueError(f"--only: unknown run or row {', '.join(unknown)}; runs: "
                     f"{', '.join(RUNS_BY_NAME)}")
  rows = [r for r in ROWS if r.id in only or r.run in only]
  wanted = {r.run for r in rows if r.run} | {n for n in only if n in RUNS_BY_NAME}
  return rows, [r for r in RUNS if r.name in wanted]


def _marker(workdir: str, budget: str, run: Run) -> dict | None:
  path = os.path.join(workdir, budget, run.name, "reproduce.json")
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    marker = json.load(f)
  same = budget in run.budgets and marker.get("config") == run.config_arg(budget)
  return marker if same else None


def cell(workdir: str, budget: str, row: Row) -> str:
  """mlts's value of `row` at `budget`, or why there is none."""
  if row.run is None or row.value is None:
    return "not reproducible here"
  run = RUNS_BY_NAME[row.run]
  if budget not in run.budgets:
    return f"no {budget} variant"
  if _marker(workdir, budget, run) is None:
    return "not run"
  try:
    return row.value(os.path.join(workdir, budget, run.name))
  except MissingResult as err:
    return f"missing: {err}"


def render(workdir: str, budgets=("quick", "standard")) -> str:
  """REPRODUCTION.md from the saved results under `workdir` (<workdir>/<budget>/<run>)."""
  budgets = tuple(budgets)
  lines = ["# Reproduction index", "",
           "Generated by `python -m experiments.reproduce --budget=<budget> "
           "--workdir=<workdir>` from the saved results (do not edit by hand). Each item of "
           "the source papers (`../shared/papers/`) that mlts reruns is listed with its "
           "published value, mlts's value at each budget, the run and file it comes from, and "
           "why the two differ. A run is `python -m experiments.main --config=<config>:<variant> "
           "--workdir=<workdir>/<budget>/<run>`. Std-F1 / PA-F1 are point-adjusted; they are "
           "shown beside unadjusted F1 and the random score.", "",
           f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from "
           f"`{workdir}`.", "",
           "## Runs", "",
           "| run | config | " + " | ".join(f"{b} wall time" for b in budgets) + " |",
           "|---|---|" + "---|" * len(budgets)]
  totals = dict.fromkeys(budgets, 0.0)
  for run in RUNS:
    cells = []
    for b in budgets:
      marker = _marker(workdir, b, run) if b in run.budgets else None
      if b not in run.budgets:
        cells.append(f"no {b} variant")
      elif marker is None:
        cells.append("not run")
      else:
        totals[b] += marker["seconds"]
        cells.append(f"{marker['seconds'] / 60:.1f} min")
    lines.append(f"| {run.name} | `{run.config}` | " + " | ".join(cells) + " |")
  lines.append("| **total** | | " + " | ".join(f"{totals[b] / 60:.1f} min" for b in budgets)
               + " |")
  for paper in dict.fromkeys(r.paper for r in ROWS):
    lines += ["", f"## {paper}", "",
              "| id | item | published | " + " | ".join(f"mlts {b}" for b in budgets)
              + " | run · file | why they differ |",
              "|---|---|---|" + "---|" * len(budgets) + "---|---|"]
    for row in (r for r in ROWS if r.paper == paper):
      source = f"{row.run} · `{row.output}`" if row.run else "–"
      lines.append(f"| {row.id} | {row.item} | {row.published} | "
                   + " | ".join(cell(workdir, b, row) for b in budgets)
                   + f" | {source} | {row.why} |")
  return "\n".join(lines) + "\n"
