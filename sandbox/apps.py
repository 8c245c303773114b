from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """The Corti simulator and the contract validator: demo and tests only.

    Listed in INSTALLED_APPS only in sandbox mode (no Corti credentials) and
    in the test settings; a production dashboard talking to Corti has none
    of it, nor its dependencies (PyYAML, jsonschema).
    """

    name = "sandbox"
    verbose_name = "Corti sandbox"
