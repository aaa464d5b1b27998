"""The run report: PNG plots, report.md and a self-contained report.html (rendered by headless Chromium)."""
import base64
import re
import shutil
import struct
import subprocess
import sys

import pytest

pytest.importorskip("dgl")
pytest.importorskip("matplotlib", reason="reports need matplotlib (the package's [report] or [test] extra)")

from dgl_ltd import Distiller
from dgl_ltd.cli import main
from dgl_ltd.data import load_dataset, load_logits
from dgl_ltd.errors import UserInputError
from dgl_ltd.models import build_model
from dgl_ltd.report import write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NODE_PLOTS = ["temperature_histogram.png", "temperature_vs_degree.png", "temperature_vs_entropy.png",
              "temperature_by_teacher.png"]


def png_size(path):
    """(width, height) from the PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", f"{path.name} is not a PNG"
    return struct.unpack(">II", data[16:24])


def distill(graph, teacher, method, seed, epochs, **config):
    student = build_model("sgc", graph.ndata["feat"].shape[1], teacher.shape[1])
    return Distiller(student, method, max_epochs=epochs, show_progress=False, **config).fit(graph, teacher, seed=seed)


@pytest.fixture(scope="module")
def cora(data_dir):
    graph = load_dataset("cora")
    return graph, load_logits(data_dir / "ltd_teacher_logits" / "cora" / "GCN.txt", graph)


@pytest.fixture(scope="module")
def ltd_run(cora):
    graph, teacher = cora
    return distill(graph, teacher, "ltd", seed=0, epochs=30, warmup=5)


@pytest.fixture(scope="module")
def ltd_report(ltd_run, cora, tmp_path_factory):
    graph, teacher = cora
    out = tmp_path_factory.mktemp("report") / "new" / "folder"  # created on demand
    return write_report(ltd_run, out, graph=graph, teacher_logits=teacher, run_info={"dataset": "cora"}, seeds=[0])


def test_ltd_report_writes_five_plots_markdown_and_html(ltd_report, ltd_run):
    folder = ltd_report.markdown.parent
    assert sorted(p.name for p in ltd_report.figures) == sorted(NODE_PLOTS + ["training_curves.png"])
    assert sorted(p.name for p in folder.iterdir()) == sorted(NODE_PLOTS + ["training_curves.png", "report.md",
                                                                            "report.html"])  # no partial files left
    markdown = ltd_report.markdown.read_text()
    page = ltd_report.html.read_text()
    for figure in ltd_report.figures:
        width, height = png_size(figure)
        assert width > 100 and height > 100
        assert f"]({figure.name})" in markdown
        assert "data:image/png;base64," + base64.b64encode(figure.read_bytes()).decode() in page
    assert f"| seed 0 | {ltd_run.test_acc:.4f} |" in markdown
    start = ltd_run.config["resolved_init_tau"]
    assert f"| resolved_init_tau | {start:.4f}".rstrip("0") in markdown
    assert re.search(r"\| torch \| \d+\.\d+", markdown) and re.search(r"\| dgl \| \d+\.\d+", markdown)
    assert "<img" in page and 'src="temperature' not in page  # nothing links outside the page


def test_report_html_renders_in_headless_chromium(ltd_report, tmp_path):
    browser = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                    if shutil.which(name)), None)
    if browser is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium)")
    # the page has no script of its own; a probe copy draws every image on a canvas once the page has
    # loaded and records its decoded size and the dark pixels of its bottom quarter (axis labels and ticks):
    # an image that did not decode, or only in part, has none there
    probe = """<script>addEventListener('load', () => document.body.setAttribute('data-images',
      Array.from(document.images).map(img => {
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        if (!img.naturalWidth) return '0x0:0';
        const context = canvas.getContext('2d'); context.drawImage(img, 0, 0);
        const rows = Math.floor(canvas.height / 4);
        const px = context.getImageData(0, canvas.height - rows, canvas.width, rows).data;
        let dark = 0; for (let i = 0; i < px.length; i += 4) if (px[i + 3] > 0 && px[i] < 100) dark++;
        return img.naturalWidth + 'x' + img.naturalHeight + ':' + dark; }).join(',')));</script></body>"""
    page = tmp_path / "probe.html"
    page.write_text(ltd_report.html.read_text().replace("</body>", probe))
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'p'}",
                          "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'data-images="([^"]*)"', dom)
    assert found, "chromium did not run the page's load handler"
    images = [entry.split(":") for entry in found.group(1).split(",")]
    assert [size for size, _ in images] == ["%dx%d" % png_size(p) for p in ltd_report.figures]
    assert all(int(dark) > 0 for _, dark in images), images


def test_constant_temperatures_and_no_graph_are_said_not_drawn(cora, ltd_report, tmp_path):
    graph, teacher = cora
    runs = [distill(graph, teacher, "kd", seed=s, epochs=6) for s in (0, 1)]
    folder = tmp_path / "kd"
    shutil.copytree(ltd_report.markdown.parent, folder)  # an earlier LTD report's plots must not survive
    report = write_report(runs, folder, seeds=[0, 1])
    assert sorted(p.name for p in folder.glob("*.png")) == ["seed_accuracy.png", "training_curves.png"]
    markdown = report.markdown.read_text()
    assert "The temperatures are constant (tau = 1 for every node: method kd does not learn them)" in markdown
    assert "| seed 1 |" in markdown and "teacher" not in markdown.split("## Settings")[0]  # no teacher given
    assert all(png_size(p)[0] > 100 for p in report.figures)


def test_ltd_without_graph_or_teacher_draws_what_it_can(ltd_run, tmp_path):
    report = write_report(ltd_run, tmp_path)
    assert sorted(p.name for p in report.figures) == ["temperature_histogram.png", "training_curves.png"]
    text = report.markdown.read_text()
    assert "No graph was given, so the degree and entropy plots are left out." in text
    assert "split the temperatures by the teacher's correctness; that plot is left out" in text


@pytest.mark.parametrize("make_bad, needle", [
    (lambda run, graph: dict(result_or_results=[]), "needs at least one DistillResult"),
    (lambda run, graph: dict(result_or_results=[run], seeds=[0, 1]), "2 seeds for 1 results"),
    (lambda run, graph: dict(result_or_results=run, teacher_logits=graph.ndata["feat"][:5]), "teacher logits have shape"),
    (lambda run, graph: dict(result_or_results="not a result"), "takes DistillResult objects"),
])
def test_bad_report_input_is_one_line(ltd_run, cora, tmp_path, make_bad, needle):
    with pytest.raises(UserInputError, match=re.escape(needle)):
        write_report(out_dir=tmp_path / "r", **make_bad(ltd_run, cora[0]))
    assert not (tmp_path / "r").exists()  # refused before anything is written


@pytest.mark.parametrize("relative", ["a_file", "a_file/below"])
def test_cli_report_into_a_file_exits_2_before_any_work(capsys, monkeypatch, tmp_path, relative):
    import dgl_ltd.cli as cli

    def no_data(*args, **kwargs):
        raise AssertionError("the dataset was loaded before --report was checked")

    monkeypatch.setattr(cli, "_graph", no_data)
    (tmp_path / "a_file").write_text("x")
    code = main(["distill", "--quiet", "--report", str(tmp_path / relative)])
    _, err = capsys.readouterr()
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "--report" in err and "file" in err


def test_cli_report_for_every_seed(capsys, tmp_path, data_dir):
    teacher = data_dir / "ltd_teacher_logits" / "cora" / "GCN.txt"
    out = tmp_path / "report"
    code = main(["distill", "--model", "sgc", "--method", "ltd", "--teacher-logits", str(teacher), "--seeds", "0,1",
                 "--max-epochs", "8", "--warmup", "2", "--quiet", "--json", "--report", str(out)])
    capsys.readouterr()
    assert code == 0
    assert len(list(out.glob("*.png"))) == 6
    markdown = (out / "report.md").read_text()
    assert "| seed 0 |" in markdown and "| seed 1 |" in markdown and str(teacher) in markdown


def test_plotting_stays_off_the_training_import_path():
    code = "import sys, dgl_ltd.distill, dgl_ltd.cli, dgl_ltd.report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
