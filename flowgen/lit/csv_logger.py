"""Lightning's CSVLogger, safe when another process has already written the metrics file.

With ``ddp_spawn`` the fit and the test run in different worker processes, each holding a
copy of the logger made before either started; the test worker's copy does not know the
columns the fit worker wrote, and Lightning's writer then fails to append
("dict contains fields not in fieldnames"). This writer reads the existing header first.
"""

from __future__ import annotations

import csv

from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import CSVLogger as _CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter


class _AppendingWriter(ExperimentWriter):
    def _record_new_keys(self) -> set[str]:
        if not self.metrics_keys and self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys.extend(next(csv.reader(file), []))
        return super()._record_new_keys()


class CSVLogger(_CSVLogger):
    """``pytorch_lightning.loggers.CSVLogger`` with a writer that keeps existing columns."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment
