"""Help > About: version, a summary of the model card (data, metrics, limitations) and licences."""

from __future__ import annotations

import html

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QTextBrowser, QVBoxLayout, QWidget

from busapp import APP_NAME, DISCLAIMER, __version__
from busapp.core import card_format as fmt
from busapp.core.card_format import Card
from busapp.core.model_card import RUNTIME_FILE, as_card_metrics

THIRD_PARTY = (
    ("Qt for Python (PySide6)", "LGPL-3.0"),
    ("LiteRT (ai-edge-litert)", "Apache-2.0"),
    ("NumPy", "BSD-3-Clause"),
    ("Pillow", "MIT-CMU"),
    ("pydicom", "MIT"),
)

SAMPLES_CREDIT = (
    "Sample images: BrEaST-Lesions-USG, Paw\u0142owska A. et al., Scientific Data 11, 148 (2024), "
    "doi:10.1038/s41597-024-02984-z; data doi:10.7937/9WKK-Q141. CC BY 4.0."
)

E = html.escape


def model_card_html(card: Card | None, error: str | None = None) -> str:
    """The model card as compact HTML (a ``ModelCard`` or a plain card mapping in, a string out)."""
    if card is None:
        return f"<p><b>Model:</b> not available. {E(error or '')}</p>"
    out = [f"<h3>Model: {E(str(card.get('name', '?')))} {E(str(card.get('version', '')))}</h3>"]
    if card.get("created"):
        out.append(f"<p class='dim'>Created {E(str(card['created']))}. {E(str(card.get('task', '')))}</p>")
    if card.get("intended_use"):
        out.append(f"<p><b>Intended use.</b> {E(str(card['intended_use']))}</p>")
    training = card.get("training") or {}
    data = fmt.training_data_lines(card)
    if data:
        out.append("<p><b>Training data</b></p><ul>" + "".join(f"<li>{E(d)}</li>" for d in data) + "</ul>")
    counts = training.get("counts") or {}
    if counts:
        out.append("<p class='dim'>Images: " + ", ".join(f"{E(k)} {E(str(v))}" for k, v in counts.items()) + "</p>")
    out.append(_decision_html(card))
    out.append(_test_html(card))
    out.append(_sites_html(card, "held_out_site", "<b>Sites never seen in training</b> (each predicted by a model "
                           "trained on the other sites; images in brackets)"))
    out.append(_sites_html(card, "test_by_dataset", "<b>Test results by site</b> (images in brackets): expect a new "
                           "hospital's images to differ again"))
    lim = fmt.limitations(card)
    if lim:
        out.append("<p><b>Limitations</b></p><ul>" + "".join(f"<li>{E(x)}</li>" for x in lim) + "</ul>")
    return "".join(out)


def _test_html(card: Card) -> str:
    rows = fmt.test_rows(card)
    if not rows:
        return ""
    m = as_card_metrics(card)
    n = m.n_test_images
    head = f"<p><b>Held-out test results</b>{f' ({n} images)' if n else ''}, 95% interval in brackets"
    with_cv = any(r.cross_validation is not None for r in rows)
    if with_cv:
        head += (f"; cross-validation: each of {m.cross_validation_images or '?'} development images predicted by "
                 "models that never saw it (smaller models, a larger sample: expect new data from these sites nearer these)")
    cells = []
    for r in rows:
        ci = fmt.ci_text(r.test, sep=" \u2013 ")
        cv = f"<td align='right'>&nbsp;{r.cross_validation:.2f}</td>" if r.cross_validation is not None else ""
        cells.append(f"<tr><td>{E(r.label)}</td><td align='right'><b>{r.test.value:.2f}</b></td>"
                     f"<td class='dim'>&nbsp;{f'[{ci}]' if ci else ''}</td>{cv}</tr>")
    columns = ("<tr><td></td><td class='dim'>test</td><td></td><td class='dim'>&nbsp;cross-val.</td></tr>"
               if with_cv else "")
    return head + "</p><table cellspacing='0' cellpadding='2'>" + columns + "".join(cells) + "</table>"


def _sites_html(card: Card, group: str, title: str) -> str:
    """Figures per site: the pooled figures can hide a weaker site, and a new hospital's images
    are another site again. A figure a site cannot give stays blank."""
    columns = fmt.site_columns(card, group, short=True)
    if not columns:
        return ""
    head = "".join(f"<td class='dim' align='right'>&nbsp;{E(c.heading)}"
                   f"{f' ({c.n_images})' if c.n_images is not None else ''}</td>" for c in columns)
    rows = []
    for key in fmt.SITE_METRICS:
        cells = "".join(f"<td align='right'>{fmt.value_text(getattr(c.figures.get(key), 'value', None))}</td>"
                        for c in columns)
        rows.append(f"<tr><td>{E(fmt.METRIC_LABELS[key])}</td>{cells}</tr>")
    return (f"<p>{title}</p><table cellspacing='0' cellpadding='2'><tr><td></td>" + head + "</tr>"
            + "".join(rows) + "</table>")


def _decision_html(card: Card) -> str:
    lines = fmt.decision_lines(card)
    if not lines:
        return ""
    return (f"<p><b>Decision threshold.</b> {E(lines[0])}</p>"
            + ("<ul>" + "".join(f"<li>{E(x)}</li>" for x in lines[1:]) + "</ul>" if lines[1:] else ""))


def licences_html(card: Card | None) -> str:
    out = ["<h3>Licences</h3><ul>", f"<li>{APP_NAME}: Apache-2.0</li>"]
    if card:
        w = card.get("pretrained_weights") or {}
        if w.get("license"):
            out.append(f"<li>Pretrained encoder weights: {E(str(w['license']))}</li>")
        out.append(
            "<li>Model weights trained on the data sets listed above; see each data set's licence and citation "
            "(BrEaST-Lesions-USG: CC BY 4.0; BUSI: cite Al-Dhabyani et al. 2020, no licence stated by its authors).</li>"
        )
    out.append(f"<li>{E(SAMPLES_CREDIT)}</li>")
    out.extend(f"<li>{E(name)}: {E(lic)}</li>" for name, lic in THIRD_PARTY)
    out.append("</ul>")
    return "".join(out)


def versions_line(card: Card | None) -> str:
    """Application and model versions, each named as such: two version numbers side by side
    ("busapp 0.1.0" beside "busnet 1.5.0") read as one product's."""
    app = f"Application: {APP_NAME} {__version__}"
    if card is None:
        return f"{app}. Model: not loaded."
    sha = ((card.get("files") or {}).get(RUNTIME_FILE) or {}).get("sha256")  # the JSON, typed card or not
    model = f"Model: {card.get('name', '?')} {card.get('version', '')}".rstrip()
    return f"{app}. {model}" + (f" (file sha256 {str(sha)[:12]}\u2026)." if sha else ".")


class AboutDialog(QDialog):
    def __init__(self, card: Card | None, model_error: str | None = None, icon: QIcon | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"About {APP_NAME}")
        self.resize(620, 640)
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        if icon is not None and not icon.isNull():
            pic = QLabel()
            pic.setPixmap(icon.pixmap(QSize(56, 56)))
            top.addWidget(pic, 0, Qt.AlignmentFlag.AlignTop)
        self.title_label = title = QLabel(
            f"<div style='font-size:16pt; font-weight:600'>{APP_NAME} {E(__version__)}</div>"
            "<div>Offline decision support for reading breast ultrasound images.</div>"
            f"<div class='dim'>{E(versions_line(card))}</div>"
            f"<div style='color:#e2a54a; margin-top:6px'>{E(DISCLAIMER)}</div>"
        )
        title.setWordWrap(True)
        top.addWidget(title, 1)
        lay.addLayout(top)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(False)
        self.browser.document().setDefaultStyleSheet(".dim { color: #9aa1ab; } h3 { margin-top: 10px; }")
        self.browser.setHtml(model_card_html(card, model_error) + licences_html(card))
        lay.addWidget(self.browser, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        lay.addWidget(buttons)
