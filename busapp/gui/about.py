"""Help > About: version, a summary of the model card (data, metrics, limitations) and licences."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QTextBrowser, QVBoxLayout, QWidget

from busapp import APP_NAME, DISCLAIMER, __version__

METRIC_LABELS = (
    ("accuracy", "Accuracy (3 classes)"),
    ("macro_f1", "Macro F1"),
    ("sensitivity_normal", "Sensitivity, normal"),
    ("sensitivity_benign", "Sensitivity, benign"),
    ("sensitivity_malignant", "Sensitivity, malignant"),
    ("auc_benign_vs_malignant", "AUC benign vs malignant"),
    ("dice_median", "Outline overlap (Dice), median"),
    ("dice_mean", "Outline overlap (Dice), mean"),
    ("ece", "Calibration error (ECE)"),
)

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


def model_card_html(card: dict[str, Any] | None, error: str | None = None) -> str:
    """The model card as compact HTML (also used for tests: plain dict in, string out)."""
    if card is None:
        return f"<p><b>Model:</b> not available. {E(error or '')}</p>"
    out = [f"<h3>Model: {E(str(card.get('name', '?')))} {E(str(card.get('version', '')))}</h3>"]
    if card.get("created"):
        out.append(f"<p class='dim'>Created {E(str(card['created']))}. {E(str(card.get('task', '')))}</p>")
    if card.get("intended_use"):
        out.append(f"<p><b>Intended use.</b> {E(str(card['intended_use']))}</p>")
    training = card.get("training", {}) or {}
    data = training.get("data") or []
    if data:
        out.append("<p><b>Training data</b></p><ul>" + "".join(f"<li>{E(str(d))}</li>" for d in data) + "</ul>")
    counts = training.get("counts") or {}
    if counts:
        out.append("<p class='dim'>Images: " + ", ".join(f"{E(k)} {E(str(v))}" for k, v in counts.items()) + "</p>")
    metrics = (card.get("metrics") or {}).get("test") or {}
    cv = card.get("cross_validation") or {}
    cv_figures = cv.get("figures") or {}
    if metrics:
        n = (card.get("metrics") or {}).get("n_test_images")
        head = f"<p><b>Held-out test results</b>{f' ({n} images)' if n else ''}, 95% interval in brackets"
        if cv_figures:
            head += (f"; cross-validation: each of {cv.get('n_images', '?')} development images predicted by "
                     "models that never saw it (smaller models, a larger sample: expect new data from these sites nearer these)")
        rows = []
        for key, label in METRIC_LABELS:
            m = metrics.get(key)
            if not isinstance(m, dict) or "value" not in m:
                continue
            ci = m.get("ci95")
            ci_txt = f"[{ci[0]:.2f} \u2013 {ci[1]:.2f}]" if isinstance(ci, list | tuple) and len(ci) == 2 else ""
            cv_txt = f"<td align='right'>&nbsp;{cv_figures[key]:.2f}</td>" if key in cv_figures else ""
            rows.append(f"<tr><td>{E(label)}</td><td align='right'><b>{m['value']:.2f}</b></td>"
                        f"<td class='dim'>&nbsp;{ci_txt}</td>{cv_txt}</tr>")
        columns = ("<tr><td></td><td class='dim'>test</td><td></td><td class='dim'>&nbsp;cross-val.</td></tr>"
                   if cv_figures else "")
        out.append(head + "</p><table cellspacing='0' cellpadding='2'>" + columns + "".join(rows) + "</table>")
    out.append(_by_site_html(card))
    lim = card.get("limitations") or []
    if lim:
        out.append("<p><b>Limitations</b></p><ul>" + "".join(f"<li>{E(str(x))}</li>" for x in lim) + "</ul>")
    return "".join(out)


SITE_LABELS = {"busi": "BUSI (Egypt)", "breast_lesions_usg": "BrEaST (Poland)"}
SITE_METRICS = ("accuracy", "auc_benign_vs_malignant", "dice_mean", "ece")


def _two_places(value: float | None) -> str:
    """Two decimals, or three where two would round a value below 1 up to a perfect 1.00."""
    if value is None:
        return ""
    return f"{value:.3f}" if value < 1 and round(value, 2) == 1 else f"{value:.2f}"


def _by_site_html(card: dict[str, Any]) -> str:
    """The test figures per data set: the pooled figures can hide a weaker site, and a new
    hospital's images are another site again."""
    sites = (card.get("metrics") or {}).get("test_by_dataset") or {}
    if not sites:
        return ""
    labels = dict(METRIC_LABELS)
    head = "".join(f"<td class='dim' align='right'>&nbsp;{E(SITE_LABELS.get(k, k))} ({v.get('n_images', '?')})</td>"
                   for k, v in sites.items())
    rows = []
    for key in SITE_METRICS:
        cells = []
        for site in sites.values():
            value = ((site.get("metrics") or {}).get(key) or {}).get("value")
            cells.append(f"<td align='right'>{_two_places(value)}</td>")
        rows.append(f"<tr><td>{E(labels[key])}</td>{''.join(cells)}</tr>")
    return ("<p><b>Test results by site</b> (images in brackets): expect a new hospital's images to differ "
            "again</p><table cellspacing='0' cellpadding='2'><tr><td></td>" + head + "</tr>" + "".join(rows) + "</table>")


def licences_html(card: dict[str, Any] | None) -> str:
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


class AboutDialog(QDialog):
    def __init__(self, card: dict[str, Any] | None, model_error: str | None = None, icon: QIcon | None = None,
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
