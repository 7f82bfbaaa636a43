"""Executes the notebooks in colab/ top to bottom with their TINY settings."""

import os

import nbclient
import nbformat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quickstart_notebook_runs(tmp_path):
  nb = nbformat.read(os.path.join(ROOT, "colab", "quickstart.ipynb"), as_version=4)
  params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
  assert len(params) == 1
  params[0].source = f"TINY = True\nWORKDIR = {str(tmp_path / 'run')!r}"
  client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": ROOT}})
  client.execute()
  outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
  assert not [o for o in outputs if o.output_type == "error"]
  assert os.path.isfile(tmp_path / "run" / "metrics.json")
  shown = [o for o in outputs if o.output_type == "display_data"]
  assert any("text/markdown" in o.data and "conv_ae" in o.data["text/markdown"] for o in shown)
  assert any("image/png" in o.data for o in shown)


def test_own_data_notebook_runs(tmp_path):
  nb = nbformat.read(os.path.join(ROOT, "colab", "own_data.ipynb"), as_version=4)
  params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
  assert len(params) == 1
  params[0].source = f"TINY = True\nWORKDIR = {str(tmp_path / 'run')!r}"
  client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": str(tmp_path)}})
  client.execute()  # from outside the repository: only the installed package is used
  outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
  assert not [o for o in outputs if o.output_type == "error"]
  for name in ("knn_window", "conv_ae"):
    assert os.path.isfile(tmp_path / "run" / name / "detector.json")
  shown = [o for o in outputs if o.output_type == "display_data"]
  table = [o.data["text/markdown"] for o in shown if "text/markdown" in o.data]
  assert table and all(m in table[0] for m in ("knn_window", "conv_ae", "random", "AUROC"))
  assert any("image/png" in o.data for o in shown)
