"""Scoring a Spark DataFrame with a container: ``pyastore.spark.score(df, "fraud.astore", ...)``.

The container is checked on the driver first, exactly as :func:`pyastore.load` and
``pyastore score`` check it: integrity (store key), signature, trust of the signer and, with
``require_anchored=True``, the proof that the store key is anchored in the verifiable log.
The DataFrame's columns are matched to the model's inputs **by name**; a missing input or
``keep`` column, a numeric input column that is not numeric, or a categorical input column
that is not text, is refused there too. So every such
failure is one typed error (:mod:`pyastore.errors`) raised by ``score`` itself, before Spark
plans a single task.

Then the container's bytes are broadcast once. Each Python worker loads them once (checking
the store key and signature again, against the signer the driver accepted) and keeps the
:class:`~pyastore.model.Model` in a cache keyed by store key, so a reused worker does not
reload it for the next task or micro-batch. Scoring runs in ``mapInArrow``: every Arrow
record batch becomes one C-contiguous float32 matrix (nulls are missing values, NaN; the texts
of a categorical input are mapped to their codes by the container's vocabulary, each distinct
text once) given to :meth:`Model.score_into`; the C core applies the input policy and fills
the float64 outputs.
No Python runs per row, except for ``label=True``, which applies :meth:`Model.decide` (the one
decision rule) to each row's outputs.

The result is a new DataFrame: the ``keep`` columns (unchanged), one ``double`` column per
output (all of them, or those named in ``outputs``), then ``label`` with ``label=True``. It is
lazy like any other: it works the same on a batch DataFrame and on a Structured Streaming one.
A row the model refuses (a missing value in an input that does not accept one) fails its task
with the same :class:`~pyastore.errors.InputError` message as ``pyastore score``, naming the
row within its record batch and the column.

:func:`score_parquet` scores Parquet files into Parquet files with the same checks, columns
and values, but one Spark task per row group that reads, scores and writes with pyarrow in
the Python worker: the rows never pass through the JVM, whose row and Arrow conversions are
most of what ``score`` costs per row (docs/SPARK.md).

pyspark, pyarrow and numpy are imported only when ``score`` is called, never by ``import
pyastore``. Spark's ``spark.sql.execution.arrow.maxRecordsPerBatch`` (10,000 by default) sets
the rows per call into the C core.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from pyastore.encoding import Categorical
from pyastore.errors import InputError, IntegrityError, UsageError
from pyastore.model import Model, SecurityWarning, load

LABEL_COLUMN = "label"
PARQUET_BATCH_ROWS = 65536  # rows per call into the C core in score_parquet

# Spark SQL type names (``DataType.typeName()``) of the columns scored as numbers.
_NUMERIC_TYPES = frozenset(
    {"byte", "short", "integer", "long", "float", "double", "decimal", "boolean"}
)

# store key -> Model, in each Python worker process: one load per worker, reused by every task
# and micro-batch that worker runs.
_WORKER_MODELS: dict[str, Model] = {}


def _quoted(name: str) -> str:
    """A column reference that Spark reads literally (dots and spaces included)."""
    return "`" + name.replace("`", "``") + "`"


def _load_on_driver(
    model: str | os.PathLike[str] | bytes | Model,
    trusted_keys: Iterable[Any] | None,
    allow_untrusted: bool,
    allow_unsigned: bool,
) -> Model:
    if isinstance(model, Model):
        return model
    return load(model, trusted_keys=trusted_keys, allow_untrusted=allow_untrusted,
                allow_unsigned=allow_unsigned)


def _check_anchor(
    model: Model,
    source: str | os.PathLike[str] | bytes | Model,
    require_anchored: bool,
    log_key: str | os.PathLike[str] | bytes | None,
    proof: str | os.PathLike[str] | None,
    log: str | None,
) -> str | None:
    """As ``pyastore score --require-anchored --log-key LOG.pub [--proof P] [--log LOG]``."""
    if log_key is None:
        if require_anchored:
            raise UsageError("require_anchored=True needs log_key= (the log's public key, a .pub "
                             "file or 32 raw bytes) and the proof bundle")
        if proof is not None or log is not None:
            raise UsageError("proof= and log= need log_key=")
        return None
    from pyastore.anchor import check_anchored, default_proof_path
    from pyastore.keys import load_public_key

    if proof is None:
        if not isinstance(source, (str, os.PathLike)):
            raise UsageError("proof= is needed when the container is not given as a path")
        proof = default_proof_path(os.fspath(source))
    public_key = log_key if isinstance(log_key, bytes) else load_public_key(log_key)
    return check_anchored(model.store_key, os.fspath(proof), public_key, log)


def _label_type(model: Model, cutoff: float | None) -> tuple[str, list[Any]]:
    """The Spark type name of the label column and the labels the model can decide, found
    with :meth:`Model.decide` itself (so the column type follows the one decision rule)."""
    n_out = len(model.output_names)
    if model.task == "regression":
        return "double", []
    if model.task == "binary":
        probes = [[-float("inf")] + [0.0] * (n_out - 1), [float("inf")] + [0.0] * (n_out - 1)]
    else:
        probes = [[1.0 if j == i else 0.0 for j in range(n_out)] for i in range(n_out)]
    labels = [model.decide(probe, cutoff=cutoff) for probe in probes]
    if all(isinstance(v, bool) for v in labels):
        return "boolean", labels
    if all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
        return "long", labels
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in labels):
        return "double", labels
    return "string", labels


class _ArrowScorer:
    """The function ``mapInArrow`` runs in each Python worker (pickled by reference to this
    module, with the broadcast handle and the settings the driver checked)."""

    def __init__(self, container: Any, store_key: str, signer: str | None, status: str,
                 keep: Sequence[str], outputs: Sequence[int], label_type: str | None,
                 cutoff: float | None, n_threads: int):
        self.container = container  # a Broadcast of the container's bytes
        self.store_key = store_key
        self.signer = signer
        self.status = status
        self.keep = list(keep)
        self.outputs = list(outputs)
        self.label_type = label_type
        self.cutoff = cutoff
        self.n_threads = n_threads

    def model(self) -> Model:
        model = _WORKER_MODELS.get(self.store_key)
        if model is None:
            data = self.container.value
            with warnings.catch_warnings():
                # The driver already warned about an allowed untrusted or unsigned container.
                warnings.simplefilter("ignore", SecurityWarning)
                model = load(data, trusted_keys=[self.signer] if self.signer else [],
                             use_default_trust=False,
                             allow_untrusted=self.status == "untrusted",
                             allow_unsigned=self.status == "unsigned")
            if model.store_key != self.store_key:
                raise IntegrityError(f"the broadcast container has store key {model.store_key}, "
                                     f"the driver verified {self.store_key}")
            _WORKER_MODELS[self.store_key] = model
        return model

    def __call__(self, batches: Iterator[Any]) -> Iterator[Any]:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        model = self.model()
        names = model.input_names
        n_out = len(model.output_names)
        nan32 = pa.scalar(float("nan"), pa.float32())
        for batch in batches:
            n_rows = batch.num_rows
            x = np.empty((n_rows, len(names)), dtype=np.float32)
            for c, name in enumerate(names):
                vocabulary = model.categorical[c]
                if vocabulary is not None:
                    x[:, c] = _codes(batch.column(name), name, vocabulary)
                    continue
                column = pc.cast(batch.column(name), pa.float32()).fill_null(nan32)
                x[:, c] = column.to_numpy(zero_copy_only=False)
            out = np.empty((n_rows, n_out), dtype=np.float64)
            if n_rows:
                model.score_into(x, out, n_threads=self.n_threads)
            arrays = [batch.column(name) for name in self.keep]
            arrays += [pa.array(out[:, j]) for j in self.outputs]
            names_out = self.keep + [model.output_names[j] for j in self.outputs]
            if self.label_type is not None:
                labels = [model.decide(row, cutoff=self.cutoff) for row in out.tolist()]
                if self.label_type == "string":
                    labels = [str(v) for v in labels]
                arrow_type = {"boolean": pa.bool_(), "long": pa.int64(), "double": pa.float64(),
                              "string": pa.string()}[self.label_type]
                arrays.append(pa.array(labels, type=arrow_type))
                names_out.append(LABEL_COLUMN)
            yield pa.RecordBatch.from_arrays(arrays, names=names_out)


def _codes(column: Any, name: str, vocabulary: Categorical) -> Any:
    """The codes of a categorical input's text column, as ``pyastore score`` reads Parquet
    (``pyastore.batch``: each distinct text looked up once); a text or a missing cell the
    vocabulary's rules refuse fails the task with an InputError naming the column and text."""
    from pyastore.batch import _category_codes

    codes = _category_codes(column, vocabulary)
    if codes is not None:
        return codes
    for text in dict.fromkeys(column.to_pylist()):
        if vocabulary.lookup([text])[0] is None:
            what = "a missing cell" if text is None else f"category {text!r}"
            raise InputError(f"input column {name!r}: {what} is refused by the model's rules "
                             f"(missing: {vocabulary.missing}, unseen: {vocabulary.unseen})")
    raise InputError(f"input column {name!r}: not a text column")


def _settings(loaded: Model, model: Any, keep: Sequence[str], outputs: Sequence[str] | None,
              label: bool, cutoff: float | None, require_anchored: bool, log_key: Any,
              proof: Any, log: str | None, n_threads: int
              ) -> tuple[list[str], list[str], str | None]:
    """The driver's checks of ``score`` and ``score_parquet`` that need no data: the anchor,
    the arguments; returns the kept columns, the wanted outputs and the label's type."""
    _check_anchor(loaded, model, require_anchored, log_key, proof, log)
    if label and not loaded.decides:
        raise UsageError(f"label=True: this model's task is {loaded.task!r}, which has no "
                         "labels to decide")
    if n_threads < 1:
        raise UsageError(f"n_threads must be at least 1, not {n_threads}")
    keep = list(keep)
    if isinstance(outputs, str):
        raise UsageError("outputs= takes a list of output names, not one string")
    wanted = list(loaded.output_names) if outputs is None else list(outputs)
    unknown = [name for name in wanted if name not in loaded.output_names]
    if unknown:
        raise UsageError(f"outputs=: no such output(s): {', '.join(unknown)} (the model has "
                         f"{', '.join(loaded.output_names)})")
    result_names = keep + wanted + ([LABEL_COLUMN] if label else [])
    clashes = sorted({name for name in result_names if result_names.count(name) > 1})
    if clashes:
        raise UsageError(f"result column(s) named twice: {', '.join(clashes)} (a kept column "
                         "has the name of an output or of the label)")
    return keep, wanted, (_label_type(loaded, cutoff)[0] if label else None)


def score(
    df: Any,
    model: str | os.PathLike[str] | bytes | Model,
    *,
    trusted_keys: Iterable[Any] | None = None,
    allow_untrusted: bool = False,
    allow_unsigned: bool = False,
    keep: Sequence[str] = (),
    outputs: Sequence[str] | None = None,
    label: bool = False,
    cutoff: float | None = None,
    require_anchored: bool = False,
    log_key: str | os.PathLike[str] | bytes | None = None,
    proof: str | os.PathLike[str] | None = None,
    log: str | None = None,
    n_threads: int = 1,
) -> Any:
    """Score a Spark DataFrame (batch or streaming) with a container; see the module doc.

    ``model``: the container as a path or bytes (loaded and verified here, with
    ``trusted_keys``, ``allow_untrusted`` and ``allow_unsigned`` as for :func:`pyastore.load`),
    or an already loaded :class:`~pyastore.model.Model`. ``keep``: input columns copied to the
    result. ``outputs``: the output names to return (default: all). ``label``: add the
    decision (``cutoff`` overrides the container's binary cutoff). ``require_anchored``:
    refuse unless ``proof`` (default: the container's path + ``.proof``) shows the store key
    anchored in the log whose public key is ``log_key``; ``log`` also checks the log itself
    (a path or ``postgresql://`` URL) for a later revocation. ``n_threads``: C core threads
    per Python worker (keep 1 when Spark runs one task per core).

    Raises, before any Spark job: the errors of :func:`pyastore.load`, :class:`LogError` for
    an unanchored container, :class:`InputError` for a missing or non-numeric column and
    :class:`UsageError` for bad arguments.
    """
    loaded = _load_on_driver(model, trusted_keys, allow_untrusted, allow_unsigned)
    keep, wanted, label_type = _settings(loaded, model, keep, outputs, label, cutoff,
                                         require_anchored, log_key, proof, log, n_threads)
    from pyspark.sql import types

    fields = {field.name: field for field in df.schema.fields}
    kinds = {name: ("text" if f.dataType.typeName() == "string" else
                    "number" if f.dataType.typeName() in _NUMERIC_TYPES else "other",
                    f.dataType.typeName()) for name, f in fields.items()}
    _check_columns(loaded, kinds, keep, "the DataFrame",
                   " (cast it, e.g. df.withColumn(name, col(name).cast('{}')))")

    spark_types = {"boolean": types.BooleanType(), "long": types.LongType(),
                   "double": types.DoubleType(), "string": types.StringType()}
    schema = types.StructType(
        [fields[name] for name in keep]
        + [types.StructField(name, types.DoubleType(), True) for name in wanted]
        + ([types.StructField(LABEL_COLUMN, spark_types[label_type], True)]
           if label_type is not None else [])
    )
    selected = list(dict.fromkeys(list(loaded.input_names) + keep))
    broadcast = df.sparkSession.sparkContext.broadcast(loaded.container_bytes)
    scorer = _ArrowScorer(
        broadcast, loaded.store_key, loaded.signer, loaded.signature_status, keep,
        [loaded.output_names.index(name) for name in wanted], label_type, cutoff, n_threads,
    )
    return df.select(*[_quoted(name) for name in selected]).mapInArrow(scorer, schema)


class _ParquetTask:
    """What ``score_parquet`` runs in each Python worker for each of its tasks: read one row
    group with pyarrow, score it with the same per-batch code as ``score`` (``_ArrowScorer``),
    write one Parquet part file (under a temporary name, then renamed, so a retried task
    rewrites the same part whole)."""

    def __init__(self, scorer: _ArrowScorer, columns: Sequence[str], destination: str):
        self.scorer = scorer
        self.columns = list(columns)
        self.destination = destination

    def __call__(self, tasks: Iterator[tuple[int, str, int]]) -> Iterator[int]:
        import pyarrow.parquet as pq

        for number, path, row_group in tasks:
            # batches of PARQUET_BATCH_ROWS, one thread: Spark runs a task per core, and the same
            # buffers serve every batch (memory stays flat whatever the row group's size)
            batches = pq.ParquetFile(path).iter_batches(
                batch_size=PARQUET_BATCH_ROWS, row_groups=[row_group], columns=self.columns,
                use_threads=False)
            part = os.path.join(self.destination, f"part-{number:05d}.parquet")
            temporary = f"{part}.{os.getpid()}.tmp"
            rows, writer = 0, None
            try:
                for scored in self.scorer(batches):
                    if writer is None:
                        writer = pq.ParquetWriter(temporary, scored.schema)
                    writer.write_batch(scored)
                    rows += scored.num_rows
            except BaseException:
                if writer is not None:
                    writer.close()
                    os.remove(temporary)  # a failed task leaves no half part behind
                raise
            if writer is not None:
                writer.close()
                os.replace(temporary, part)
            yield rows


def _parquet_files(source: str) -> list[str]:
    """A Parquet file, or the ``.parquet`` files under a directory (Spark's part files
    included, hidden and ``_`` files left out), sorted."""
    if os.path.isfile(source):
        return [source]
    if not os.path.isdir(source):
        raise InputError(f"{source}: no such Parquet file or directory")
    found = []
    for folder, directories, names in os.walk(source):
        directories[:] = sorted(d for d in directories if not d.startswith((".", "_")))
        found += [os.path.join(folder, name) for name in sorted(names)
                  if name.endswith(".parquet") and not name.startswith((".", "_"))]
    if not found:
        raise InputError(f"{source}: a directory without .parquet files")
    return found


def _check_columns(loaded: Model, kinds: dict[str, tuple[str, str]], keep: Sequence[str],
                   where: str, cast: str = "") -> None:
    """The column checks of ``score`` (on a DataFrame) and ``score_parquet`` (on each file):
    ``kinds`` maps a column name to its class (``"number"``, ``"text"`` or ``"other"``) and
    its type as the source names it. Every input and ``keep`` column must be there, a numeric
    input a number, a categorical input text (a number would be taken for a code).
    ``cast``: advice appended, ``{}`` the type to cast to."""
    missing = [name for name in loaded.input_names if name not in kinds]
    if missing:
        raise InputError(f"{where}: input column(s) missing: {', '.join(missing)} (the model "
                         f"needs {', '.join(loaded.input_names)})")
    absent_keep = [name for name in keep if name not in kinds]
    if absent_keep:
        raise InputError(f"{where}: keep column(s) not in the input: {', '.join(absent_keep)}")
    for name, vocabulary in zip(loaded.input_names, loaded.categorical):
        kind, shown = kinds[name]
        if vocabulary is not None and kind != "text":
            raise InputError(f"{where}: input column {name!r} is categorical and has type "
                             f"{shown}, not text (its categories are texts)"
                             f"{cast.format('string')}")
        if vocabulary is None and kind != "number":
            raise InputError(f"{where}: input column {name!r} has type {shown}, not a "
                             f"number{cast.format('double')}")


def _parquet_kinds(schema: Any) -> dict[str, tuple[str, str]]:
    """``_check_columns``'s kinds of a Parquet file's Arrow schema (a dictionary column by its
    values)."""
    import pyarrow as pa

    kinds = {}
    for field in schema:
        kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
        number = (pa.types.is_integer(kind) or pa.types.is_floating(kind)
                  or pa.types.is_boolean(kind) or pa.types.is_null(kind))
        kinds[field.name] = ("text" if text else "number" if number else "other",
                             str(field.type))
    return kinds


def score_parquet(
    spark: Any,
    model: str | os.PathLike[str] | bytes | Model,
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    trusted_keys: Iterable[Any] | None = None,
    allow_untrusted: bool = False,
    allow_unsigned: bool = False,
    keep: Sequence[str] = (),
    outputs: Sequence[str] | None = None,
    label: bool = False,
    cutoff: float | None = None,
    require_anchored: bool = False,
    log_key: str | os.PathLike[str] | bytes | None = None,
    proof: str | os.PathLike[str] | None = None,
    log: str | None = None,
    n_threads: int = 1,
    overwrite: bool = False,
) -> int:
    """Score Parquet files on Spark without a DataFrame: one task per row group, each read,
    scored and written by pyarrow in a Python worker; returns the number of rows scored.

    ``source``: a Parquet file or a directory of them; ``destination``: a directory that
    gets one ``part-NNNNN.parquet`` per row group that had rows, and ``_SUCCESS`` when every
    task has ended (refused if it exists, unless ``overwrite``). Every other argument, every
    check before any task, and the columns and values written are those of :func:`score`
    (the ``keep`` columns, the outputs, ``label``). Spark only schedules: the rows never pass
    through the JVM, which is what ``score`` pays for on every row (docs/SPARK.md). The files
    must be readable and the destination writable at the same paths from every executor (a
    local or shared file system).
    """
    import shutil

    import pyarrow.parquet as pq

    loaded = _load_on_driver(model, trusted_keys, allow_untrusted, allow_unsigned)
    keep, wanted, label_type = _settings(loaded, model, keep, outputs, label, cutoff,
                                         require_anchored, log_key, proof, log, n_threads)
    source, destination = os.fspath(source), os.path.abspath(os.fspath(destination))
    files = [os.path.abspath(path) for path in _parquet_files(source)]
    tasks = []
    for path in files:
        try:
            metadata = pq.ParquetFile(path)
        except Exception as error:  # pyarrow's ArrowInvalid, OSError: not Parquet
            raise InputError(f"{path}: not a readable Parquet file ({error})") from None
        _check_columns(loaded, _parquet_kinds(metadata.schema_arrow), keep, path)
        tasks += [(path, group) for group in range(metadata.num_row_groups)]
    if os.path.exists(destination):
        if not overwrite:
            raise UsageError(f"{destination} exists (overwrite=True replaces it)")
        if not os.path.isdir(destination):
            raise UsageError(f"{destination} is a file, not a directory of part files: "
                             "overwrite=True replaces only a directory")
        shutil.rmtree(destination)
    os.makedirs(destination)
    broadcast = spark.sparkContext.broadcast(loaded.container_bytes)
    scorer = _ArrowScorer(
        broadcast, loaded.store_key, loaded.signer, loaded.signature_status, keep,
        [loaded.output_names.index(name) for name in wanted], label_type, cutoff, n_threads,
    )
    columns = list(dict.fromkeys(list(loaded.input_names) + keep))
    numbered = [(number, path, group) for number, (path, group) in enumerate(tasks)]
    rows = 0
    if numbered:
        job = spark.sparkContext.parallelize(numbered, len(numbered))
        rows = sum(job.mapPartitions(_ParquetTask(scorer, columns, destination)).collect())
    with open(os.path.join(destination, "_SUCCESS"), "w"):
        pass
    return rows


def build_parser() -> Any:
    """The command line of ``spark-submit .../pyastore/spark.py`` (see :func:`main`)."""
    from pyastore.commandline import Parser

    parser = Parser(
        prog="pyastore.spark",
        description="Score a Parquet or CSV dataset on Spark with a verified container and "
                    "write the scores as Parquet (a directory, as Spark writes it).",
        epilog="example:\n  spark-submit --master 'local[2]' \"$(python -c 'import "
               "pyastore.spark as s; print(s.__file__)')\" \\\n      fraud.astore "
               "transactions.parquet scores.parquet --trust publisher.pub --keep id --label")
    parser.add_argument("model", metavar="MODEL", help="the .astore file")
    parser.add_argument("input", metavar="INPUT", help="Parquet or CSV (with a header) path")
    parser.add_argument("output", metavar="OUTPUT", help="Parquet directory to write")
    parser.add_argument("--input-format", choices=("parquet", "csv"),
                        help="default: from INPUT's extension (else Parquet)")
    parser.add_argument("--keep", metavar="COL", nargs="+", action="extend", default=[],
                        help="input columns to copy to the output (e.g. an id)")
    parser.add_argument("--outputs", metavar="NAME", nargs="+", action="extend",
                        help="only these model outputs (default: all)")
    parser.add_argument("--label", action="store_true", help="add the decision ('label')")
    parser.add_argument("--mode", choices=("error", "overwrite"), default="error",
                        help="when OUTPUT exists: fail (default) or replace it")
    parser.add_argument("--trust", metavar="FILE", action="append", default=[],
                        help="trust the signer in this .pub file (repeatable)")
    parser.add_argument("--allow-untrusted", action="store_true")
    parser.add_argument("--allow-unsigned", action="store_true")
    parser.add_argument("--require-anchored", action="store_true",
                        help="refuse unless anchored in the log (needs --log-key)")
    parser.add_argument("--log-key", metavar="LOG.pub")
    parser.add_argument("--proof", metavar="PROOF", help="default: MODEL.proof")
    parser.add_argument("--log", metavar="LOG", help="also check the log itself (revocations)")
    parser.set_defaults(handler=_run)
    return parser


def _run(args: Any) -> int:
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("pyastore score").getOrCreate()
    input_format = args.input_format or ("csv" if args.input.endswith(".csv") else "parquet")
    reader = spark.read.option("header", "true").option("inferSchema", "true") \
        if input_format == "csv" else spark.read
    frame = reader.format(input_format).load(args.input)
    texts = _categorical_inputs(args.model) & set(frame.columns) if input_format == "csv" \
        else set()
    if texts:  # their cells as written ("01", "1.50"), not as the numbers Spark infers
        from pyspark.sql import types

        schema = types.StructType([types.StructField(f.name, types.StringType(), True)
                                   if f.name in texts else f for f in frame.schema.fields])
        frame = spark.read.option("header", "true").schema(schema).csv(args.input)
    scored = score(frame, args.model, trusted_keys=args.trust,
                   allow_untrusted=args.allow_untrusted, allow_unsigned=args.allow_unsigned,
                   keep=args.keep, outputs=args.outputs, label=args.label,
                   require_anchored=args.require_anchored, log_key=args.log_key,
                   proof=args.proof, log=args.log)
    scored.write.mode(args.mode).parquet(args.output)
    return 0


def _categorical_inputs(path: str) -> set[str]:
    """The names of the container's categorical inputs, read without trust: only to choose
    how the CSV is read; ``score`` verifies the container before anything is scored."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        model = load(path, use_default_trust=False, allow_untrusted=True, allow_unsigned=True)
    return {name for name, c in zip(model.input_names, model.categorical) if c is not None}


def main(argv: Sequence[str] | None = None) -> int:
    """``spark-submit pyastore/spark.py MODEL INPUT OUTPUT [options]``: typed errors become one
    ``pyastore.spark: error: ...`` line and the exit codes of ``pyastore score``."""
    from pyastore.commandline import run_command

    return run_command(build_parser(), argv)


if __name__ == "__main__":
    import sys

    # Run from the imported module, not from __main__: the function mapInArrow ships to the
    # workers must be importable there as pyastore.spark._ArrowScorer.
    from pyastore.spark import main as _main

    sys.exit(_main())
