"""Executes colab/quickstart.ipynb top to bottom with its TINY setting."""

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
