"""NeuralFuse: input transformations that keep quantized models accurate at low voltage.

The verbs of the main job, from the data to the Pareto front (see docs/architecture.md)::

    base, meta = neuralfuse.load_base_model("base.pt")
    neuralfuse.train("runs/unets", neuralfuse.TrainConfig("UNetS", ber=0.01), base,
                     neuralfuse.load_dataset("default"))
    generator, _ = neuralfuse.load_generator("runs/unets", base=base)
    neuralfuse.evaluate(base, test_set, point=sramsim.OperatingPoint.resolve(ber=0.01), generator=generator)
    table = neuralfuse.sweep(base, test_set, voltages, generators={"UNetS": generator})

``neuralfuse.shipped`` holds the models shipped with the package (``neuralfuse.shipped.load("vgg11")``).
The names load on first use, so importing one light module (say :mod:`neuralfuse.registry`, the
``sramsim.models`` entry point) does not pull in the rest.
"""
from characterization.exports import lazy_exports
from neuralfuse import shipped  # noqa: F401  (the shipped models; light: torch loads with a model)

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "neuralfuse.models": ("create_model", "list_models"),
    "neuralfuse.generators": ("create_generator", "list_generators"),
    "neuralfuse.data": ("fixed_subset", "holdout_split", "list_datasets", "load_dataset"),
    "neuralfuse.checkpoint": ("load_base_model", "load_generator", "save_checkpoint"),
    "neuralfuse.qat": ("enable_qat", "export_quantized"),
    "neuralfuse.train_base": ("TrainBaseConfig",),
    "neuralfuse.eopm": ("TrainConfig", "train"),
    "neuralfuse.evaluation": ("comparison_table", "evaluate"),
    "neuralfuse.tradeoff": ("load_chips", "load_sweep", "operating_points", "pareto_front", "parse_bers",
                            "parse_voltages", "sweep"),
    "neuralfuse.criteria": ("Criterion", "parse_criterion"),
    "neuralfuse.per_chip_voltage": ("per_chip_voltages", "summarize_per_chip"),
    "neuralfuse.strategies": ("Strategy", "compare_strategies"),
    "neuralfuse.plots": ("write_sweep_plots",),
    "neuralfuse.demo": ("run_demo",),
})
