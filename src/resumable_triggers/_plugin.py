"""The package's Airflow plugin: the API server's listener for a user's state change (see ``_listener``)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from resumable_triggers.resume._listener import UserStateListener


class ResumableTriggersPlugin(AirflowPlugin):
    name = "resumable_triggers"
    listeners = [UserStateListener()]
