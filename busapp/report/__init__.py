"""Clinical outputs drawn with Qt: the PDF report and PNG exports of the mask and overlay."""
