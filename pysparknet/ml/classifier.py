"""SparkNetClassifier: a Spark ML Estimator that trains a Caffe net with SparkNetTrainer.

    clf = SparkNetClassifier(zooModel="lenet", numWorkers=2, tau=20, rounds=5,
                             featuresCol="image", labelCol="label_index")
    model = Pipeline(stages=[StringIndexer(...), clf]).fit(df)
"""
from __future__ import annotations

from pyspark.ml import Estimator
from pyspark.ml.param import TypeConverters
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable

from .. import finetune, zoo
from ..data.spark_sources import dataframe_records
from ..net import TRAIN
from ..prototxt import parse_net, parse_solver, to_text
from .model import SparkNetModel
from .params import SparkNetParams, _param, as_prototxt

_TRAINING = {"numWorkers": 2, "tau": 50, "rounds": 10, "schedule": "segments", "tls": True,
             "outer": "plain", "solverState": "local", "skipMismatched": False,
             "verbose": False}


class SparkNetClassifier(Estimator, SparkNetParams, DefaultParamsReadable,
                         DefaultParamsWritable):
    """Trains the net data-parallel (SparkNet) on the featuresCol images and the
    labelCol class indices (e.g. a StringIndexer's output); fit returns a SparkNetModel.

    net=, solver= take any net or solver pysparknet reads (a message, prototxt text or
    path, a NetParams, a zoo model) and set netPrototxt / solverPrototxt.
    Fine-tuning: initialWeights (a .caffemodel, layers matched by name; the model's
    copy_report says what was copied), numClasses (a new classifier), freezeLayers."""

    numWorkers = _param("numWorkers", "K: workers, partitions, persistent solvers",
                        TypeConverters.toInt)
    tau = _param("tau", "local iterations a round", TypeConverters.toInt)
    rounds = _param("rounds", "rounds to train", TypeConverters.toInt)
    seed = _param("seed", "seeds the nets", TypeConverters.toInt)
    schedule = _param("schedule", "'segments' or 'jobs'", TypeConverters.toString)
    tls = _param("tls", "encrypt the weight exchange", TypeConverters.toBoolean)
    roundSeconds = _param("roundSeconds", "stragglers: seconds a round trains",
                          TypeConverters.toFloat)
    minWorkers = _param("minWorkers", "stragglers: workers a round waits for",
                        TypeConverters.toInt)
    outer = _param("outer", "the driver's outer step: plain, bmuf, nesterov",
                   TypeConverters.toString)
    solverState = _param("solverState", "local, reset or average", TypeConverters.toString)
    initialWeights = _param("initialWeights", "a .caffemodel to start from",
                            TypeConverters.toString)
    skipMismatched = _param("skipMismatched", "initialWeights: leave layers of another "
                            "shape new instead of failing", TypeConverters.toBoolean)
    numClasses = _param("numClasses", "give the net a new classifier for this many classes",
                        TypeConverters.toInt)
    freezeLayers = _param("freezeLayers", "layers not to train (lr_mult 0)",
                          TypeConverters.toListString)
    verbose = _param("verbose", "show the fit's progress", TypeConverters.toBoolean)
    mlflow = _param("mlflow", "log the fit to MLflow: true (starting a run if none is "
                    "active), false (never); unset: into the active run, if any",
                    TypeConverters.toBoolean)

    def __init__(self, net=None, solver=None, **params):
        super().__init__()
        self._setDefault(**_TRAINING)
        self.setParams(net=net, solver=solver, **params)

    def setParams(self, net=None, solver=None, **params) -> "SparkNetClassifier":
        if net is not None:
            params["netPrototxt"] = as_prototxt(net)
            if solver is None and getattr(net, "solver", None) is not None:
                solver = net.solver  # a zoo model brings its own
        if solver is not None:
            params["solverPrototxt"] = as_prototxt(solver, solver=True)
        return self._set(**params)

    def _net_and_solver(self):
        if self.isDefined(self.zooModel) and not self.isDefined(self.netPrototxt):
            model = zoo.load(self.getOrDefault(self.zooModel))
            net, solver = model.net, model.solver
        else:
            net = parse_net(self.net_text())
            if not self.isDefined(self.solverPrototxt):
                raise ValueError("give the solver: solverPrototxt (or solver=), or zooModel")
            solver = parse_solver(self.getOrDefault(self.solverPrototxt))
        if self.isDefined(self.numClasses):
            net = finetune.replace_classifier(net, self.getOrDefault(self.numClasses))
        if self.isDefined(self.freezeLayers):
            net = finetune.freeze(net, self.getOrDefault(self.freezeLayers))
        return net, solver

    def _trainer(self, spark, net, solver):
        from ..spark import Exchange, SparkNetTrainer, Stragglers

        get = self.getOrDefault
        optional = {name: get(name) if self.isDefined(name) else None
                    for name in ("seed", "roundSeconds", "minWorkers")}
        return SparkNetTrainer(
            spark, net, solver, num_workers=get(self.numWorkers), tau=get(self.tau),
            device=get(self.device), seed=optional["seed"], outer=get(self.outer),
            solver_state=get(self.solverState), schedule=get(self.schedule),
            exchange=Exchange(tls=get(self.tls)),
            stragglers=Stragglers(round_seconds=optional["roundSeconds"],
                                  min_workers=optional["minWorkers"]))

    def _records(self, dataset, trainer):
        kind = self.image_column_kind(dataset)
        label = self.checked_column(dataset, self.labelCol)
        net_shape = tuple(trainer.driver_net.input_shape(TRAIN)[1:])
        shape = self.pixels_shape(kind, net_shape)
        color = {1: False, 3: True}.get((shape or net_shape)[0])
        policy = "skip" if self.on_bad_record() != "error" else "error"
        return dataframe_records(dataset, self.getOrDefault(self.featuresCol), label,
                                 shape, color, policy)

    def _fit(self, dataset):
        net, solver = self._net_and_solver()
        trainer = self._trainer(dataset.sparkSession, net, solver)
        report = None
        if self.isDefined(self.initialWeights):  # the fit starts from the driver net's
            report = finetune.copy_weights(trainer.driver_net,
                                           self.getOrDefault(self.initialWeights),
                                           self.getOrDefault(self.skipMismatched))
        result = trainer.fit(self._records(dataset, trainer),
                             rounds=self.getOrDefault(self.rounds),
                             progress=self.getOrDefault(self.verbose),
                             mlflow=self.getOrDefault(self.mlflow) if
                             self.isDefined(self.mlflow) else None)
        model = SparkNetModel(result.weights, result.history)
        self._copyValues(model)
        model._set(netPrototxt=to_text(net), solverPrototxt=to_text(solver))
        model.copy_report = report
        return model
