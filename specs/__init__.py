"""The bundled accelerator specs (``*.yaml``, ``baselines/*.yaml``, ``examples/``), installed as
package data so that ``--spec panacea`` resolves from any folder (mapper.spec.resolve_spec_path)."""
