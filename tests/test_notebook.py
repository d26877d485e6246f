"""The quickstart notebook runs top to bottom (it reads the shipped reference runs)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_executes():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "lr = " in text and "peak learning rate" in text
    assert "optimal lr at fixed batch size and token budget: lr* ∝ N^" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 3  # μTransfer, loss against lr, the laws
