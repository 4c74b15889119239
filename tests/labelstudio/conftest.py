"""A real Label Studio per test module (see tests/support/labelstudio.py).

Found through ``$HLOPS_LABEL_STUDIO`` (``.ci/run`` exports it) or the repo's
``.venv-labelstudio`` (``bash .ci/labelstudio.sh``). Missing: skipped locally, a failure
under ``CI=true``.
"""

from __future__ import annotations

import os

import pytest

from support.labelstudio import LabelStudioProcess, find_label_studio, migrated_template


@pytest.fixture(scope="session")
def label_studio_exe():
    exe = find_label_studio()
    if exe is None:
        message = "no Label Studio (run `bash .ci/labelstudio.sh` or set HLOPS_LABEL_STUDIO)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return exe


@pytest.fixture(scope="session")
def label_studio_template(label_studio_exe, tmp_path_factory):
    # The parent of the session's base temp dir is shared by the xdist workers of one run.
    return migrated_template(label_studio_exe, tmp_path_factory.getbasetemp().parent)


@pytest.fixture(scope="module")
def label_studio(label_studio_exe, label_studio_template, tmp_path_factory):
    """``.url``, ``.token`` (legacy), ``.username``/``.password``, ``.headers``."""
    with LabelStudioProcess(
        label_studio_exe, label_studio_template, tmp_path_factory.mktemp("labelstudio")
    ) as ls:
        yield ls
