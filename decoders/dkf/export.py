"""ONNX graphs, runtime sessions and the JSON form of the DKF.

The Discriminative Kalman Filter (:mod:`neurodeck.decoders.dkf`) needs, at every time step, the conditional
mean ``f(x) = E[z | x]`` and covariance ``Q(x)`` of the state given the features. With
Nadaraya-Watson (NW) regression both are kernel-weighted averages over the training set:

``w_i(x) = exp(-||s(x) - s(x_i)||^2 / (2 h^2))``, ``f(x) = sum_i w_i z_i / sum_i w_i`` and
``Q(x) = sum_i w'_i r_i r_i^T / sum_i w'_i + Q_add`` (bandwidth ``h'`` for ``w'``), where
``s(x) = (x - mean) / scale`` standardises the features, ``r_i`` are leave-one-out residuals and
``Q_add`` is a small positive-definite floor. skl2onnx has no converter for this, so the graph is
built here node by node with :mod:`onnx.helper` (opset 17, float64 end to end so the outputs agree
with numpy to ~1e-12). The training data are stored as initializers.

Graph interface (shared by every DKF ONNX model, see :func:`dkf_to_onnx`):

- input ``x``: float64, shape (n_batch, n_features), raw (unstandardised) features;
- output ``f``: float64, shape (n_batch, n_states), in the filter's centred state coordinates;
- output ``Q``: float64, shape (n_batch, n_states, n_states).

The squared distances use the expansion ``|a|^2 + |b|^2 - 2 a.b`` (one MatMul) and the kernel
logits are shifted by their row maximum before ``Exp``, exactly like the numpy reference
:func:`neurodeck.decoders.dkf.regression.nadaraya_watson`, so far-away inputs never underflow to 0/0.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from neurodeck.decoders.dkf.updates import _sym_pd_inv
from neurodeck.decoders.errors import DecoderError, ModelBundleError

if TYPE_CHECKING:
    from neurodeck.decoders.dkf.filters import DiscriminativeKalmanFilter

logger = logging.getLogger(__name__)

__all__ = [
    "OPSET",
    "INPUT_NAME",
    "F_NAME",
    "Q_NAME",
    "FORMAT_VERSION",
    "nw_nodes",
    "make_nw_model",
    "dkf_to_onnx",
    "make_session",
    "dkf_to_dict",
    "dkf_from_dict",
]

FORMAT_VERSION = 1

OPSET = 17
INPUT_NAME = "x"
F_NAME = "f"
Q_NAME = "Q"


def _init(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(value), name=name)


def _kernel_average(
    prefix: str,
    d2: str,
    bandwidth: float,
    targets_name: str,
    out: str,
    nodes: list,
    inits: list,
    axes: str,
) -> None:
    """Append nodes computing ``softmax(-d2 / (2 h^2)) @ targets`` into ``out``."""
    if not (np.isfinite(bandwidth) and bandwidth > 0):
        raise DecoderError(f"NW bandwidth must be a finite positive number, got {bandwidth!r}")
    inits.append(_init(f"{prefix}neg_inv_2h2", np.array(-0.5 / bandwidth**2, dtype=np.float64)))
    nodes += [
        helper.make_node("Mul", [d2, f"{prefix}neg_inv_2h2"], [f"{prefix}logits"]),
        helper.make_node("ReduceMax", [f"{prefix}logits"], [f"{prefix}lmax"], axes=[1], keepdims=1),
        helper.make_node("Sub", [f"{prefix}logits", f"{prefix}lmax"], [f"{prefix}shifted"]),
        helper.make_node("Exp", [f"{prefix}shifted"], [f"{prefix}w"]),
        helper.make_node("ReduceSum", [f"{prefix}w", axes], [f"{prefix}wsum"], keepdims=1),
        helper.make_node("MatMul", [f"{prefix}w", targets_name], [f"{prefix}num"]),
        helper.make_node("Div", [f"{prefix}num", f"{prefix}wsum"], [out]),
    ]


def nw_nodes(
    X_train: np.ndarray,
    x_mean: np.ndarray,
    x_scale: np.ndarray,
    *,
    Y_train: np.ndarray | None = None,
    bandwidth: float | None = None,
    R_train: np.ndarray | None = None,
    q_bandwidth: float | None = None,
    Q_add: np.ndarray | None = None,
    Q_const: np.ndarray | None = None,
    input_name: str = INPUT_NAME,
    f_name: str = F_NAME,
    q_name: str = Q_NAME,
    prefix: str = "nw_",
) -> tuple[list, list, list]:
    """Nodes, initializers and outputs computing NW ``f`` and/or ``Q`` from ``input_name``.

    Parameters
    ----------
    X_train : ndarray, shape (n_train, n_features)
        Standardised training features (the kernel centres).
    x_mean, x_scale : ndarray, shape (n_features,)
        Standardisation applied to the raw input: ``(x - x_mean) / x_scale``.
    Y_train : ndarray, shape (n_train, n_states) or None
        Targets of ``f`` (centred states). ``None``: no ``f`` output.
    bandwidth : float or None
        Kernel bandwidth ``h`` of ``f``.
    R_train : ndarray, shape (n_train, n_states, n_states) or None
        Residual outer products averaged into ``Q``. ``None`` with ``Q_const`` given: constant Q;
        both ``None``: no ``Q`` output.
    q_bandwidth : float or None
        Kernel bandwidth of ``Q``.
    Q_add : ndarray, shape (n_states, n_states) or None
        Positive-definite floor added to the NW ``Q``.
    Q_const : ndarray, shape (n_states, n_states) or None
        Constant ``Q`` broadcast to every input row (used when Q is not input dependent).
    input_name, f_name, q_name, prefix : str
        Tensor names; ``prefix`` keeps internal names unique when merged into another graph.

    Returns
    -------
    nodes : list of onnx.NodeProto
    initializers : list of onnx.TensorProto
    outputs : list of onnx.ValueInfoProto
    """
    X_train = np.asarray(X_train, dtype=np.float64)
    if X_train.ndim != 2 or X_train.shape[0] < 1:
        raise DecoderError(f"X_train must have shape (n_train, n_features), got {X_train.shape}")
    n_train, n_features = X_train.shape
    p = prefix
    nodes: list = []
    inits: list = []
    outputs: list = []
    need_dist = Y_train is not None or R_train is not None
    if need_dist:
        inits += [
            _init(f"{p}x_mean", np.asarray(x_mean, dtype=np.float64).reshape(1, n_features)),
            _init(f"{p}x_scale", np.asarray(x_scale, dtype=np.float64).reshape(1, n_features)),
            _init(f"{p}axes_1", np.array([1], dtype=np.int64)),
            _init(f"{p}XtrT", X_train.T.copy()),
            _init(f"{p}xtr_sq", (X_train**2).sum(axis=1).reshape(1, n_train)),
            _init(f"{p}minus2", np.array(-2.0, dtype=np.float64)),
            _init(f"{p}zero", np.array(0.0, dtype=np.float64)),
        ]
        nodes += [
            helper.make_node("Sub", [input_name, f"{p}x_mean"], [f"{p}xc"]),
            helper.make_node("Div", [f"{p}xc", f"{p}x_scale"], [f"{p}xs"]),
            helper.make_node("Mul", [f"{p}xs", f"{p}xs"], [f"{p}xs2"]),
            helper.make_node("ReduceSum", [f"{p}xs2", f"{p}axes_1"], [f"{p}xsq"], keepdims=1),
            helper.make_node("MatMul", [f"{p}xs", f"{p}XtrT"], [f"{p}cross"]),
            helper.make_node("Mul", [f"{p}cross", f"{p}minus2"], [f"{p}cross2"]),
            helper.make_node("Add", [f"{p}xsq", f"{p}xtr_sq"], [f"{p}sq_sum"]),
            helper.make_node("Add", [f"{p}sq_sum", f"{p}cross2"], [f"{p}d2_raw"]),
            helper.make_node("Max", [f"{p}d2_raw", f"{p}zero"], [f"{p}d2"]),
        ]
    if Y_train is not None:
        Y_train = np.asarray(Y_train, dtype=np.float64)
        if Y_train.ndim != 2 or Y_train.shape[0] != n_train:
            raise DecoderError(f"Y_train must have shape ({n_train}, n_states), got {Y_train.shape}")
        inits.append(_init(f"{p}Ytr", Y_train))
        _kernel_average(
            f"{p}f_", f"{p}d2", float(bandwidth), f"{p}Ytr", f_name, nodes, inits, f"{p}axes_1"
        )
        outputs.append(
            helper.make_tensor_value_info(f_name, TensorProto.DOUBLE, [None, Y_train.shape[1]])
        )
    if R_train is not None or Q_const is not None:
        if R_train is not None:
            R_train = np.asarray(R_train, dtype=np.float64)
            if R_train.ndim != 3 or R_train.shape[0] != n_train:
                raise DecoderError(
                    f"R_train must have shape ({n_train}, n_states, n_states), got {R_train.shape}"
                )
            d = R_train.shape[1]
            inits.append(_init(f"{p}Rtr", R_train.reshape(n_train, d * d)))
            _kernel_average(
                f"{p}q_", f"{p}d2", float(q_bandwidth), f"{p}Rtr", f"{p}q_flat", nodes, inits,
                f"{p}axes_1",
            )
            add = np.zeros((d, d)) if Q_add is None else np.asarray(Q_add, dtype=np.float64)
            inits += [
                _init(f"{p}q_shape", np.array([-1, d, d], dtype=np.int64)),
                _init(f"{p}Q_add", add.reshape(1, d, d)),
            ]
            nodes += [
                helper.make_node("Reshape", [f"{p}q_flat", f"{p}q_shape"], [f"{p}q_nw"]),
                helper.make_node("Add", [f"{p}q_nw", f"{p}Q_add"], [q_name]),
            ]
        else:
            Qc = np.asarray(Q_const, dtype=np.float64)
            d = Qc.shape[0]
            inits += [
                _init(f"{p}Qc", Qc.reshape(1, d, d)),
                _init(f"{p}zero_col", np.zeros((1, 1, 1), dtype=np.float64)),
                _init(f"{p}unsq_axes", np.array([2], dtype=np.int64)),
            ]
            # (N, F) -> (N, 1, 1) zeros by slicing, then broadcast-add the constant: (N, d, d).
            inits += [
                _init(f"{p}s0", np.array([0], dtype=np.int64)),
                _init(f"{p}s1", np.array([1], dtype=np.int64)),
            ]
            nodes += [
                helper.make_node("Slice", [input_name, f"{p}s0", f"{p}s1", f"{p}s1"], [f"{p}col"]),
                helper.make_node("Unsqueeze", [f"{p}col", f"{p}unsq_axes"], [f"{p}col3"]),
                helper.make_node("Mul", [f"{p}col3", f"{p}zero_col"], [f"{p}zeros3"]),
                helper.make_node("Add", [f"{p}zeros3", f"{p}Qc"], [q_name]),
            ]
        outputs.append(helper.make_tensor_value_info(q_name, TensorProto.DOUBLE, [None, d, d]))
    if not outputs:
        raise DecoderError("nw_nodes: nothing to compute (give Y_train and/or R_train or Q_const)")
    return nodes, inits, outputs


def make_nw_model(
    X_train: np.ndarray,
    x_mean: np.ndarray,
    x_scale: np.ndarray,
    **kwargs,
) -> onnx.ModelProto:
    """A complete, checked ONNX model ``x -> (f, Q)`` for NW regression.

    Parameters are those of :func:`nw_nodes`. The input ``x`` is float64 with shape
    (n_batch, n_features); one time step is a batch of one.

    Returns
    -------
    model : onnx.ModelProto
        Opset 17 model, validated with :func:`onnx.checker.check_model`.
    """
    X_train = np.asarray(X_train, dtype=np.float64)
    nodes, inits, outputs = nw_nodes(X_train, x_mean, x_scale, **kwargs)
    inp = helper.make_tensor_value_info(INPUT_NAME, TensorProto.DOUBLE, [None, X_train.shape[1]])
    graph = helper.make_graph(nodes, "nadaraya_watson_f_Q", [inp], outputs, initializer=inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="neurodeck.decoders.dkf.export",
    )
    model.ir_version = min(model.ir_version, 9)
    onnx.checker.check_model(model)
    logger.debug("built NW ONNX graph: %d nodes, %d training points", len(nodes), X_train.shape[0])
    return model


def dkf_to_onnx(dkf: DiscriminativeKalmanFilter) -> onnx.ModelProto:
    """ONNX model ``x (n, n_features) float64 -> f (n, n_states), Q (n, n_states, n_states)``.

    NW: hand-built graph (:func:`make_nw_model`). MLP: skl2onnx export of the fitted
    scaler+MLP pipeline for ``f``, with an NW (or constant) ``Q`` branch added to the same
    graph. GP: not supported (raises :class:`DecoderError`).

    Returns
    -------
    model : onnx.ModelProto
    """
    dkf._check_fitted()
    if dkf.regressor == "gp":
        raise DecoderError("to_onnx supports regressor='nw' and 'mlp', not 'gp'")
    if dkf.regressor_ is None and dkf.X_train_ is None:
        raise DecoderError("this DKF has no observation model to export (rebuilt from a dict)")
    q_kwargs: dict[str, Any] = (
        {"Q_const": dkf.Q_const_}
        if dkf.Q_const_ is not None
        else {"R_train": dkf.R_train_, "q_bandwidth": dkf.q_bandwidth_, "Q_add": dkf.Q_add_}
    )
    if dkf.regressor == "nw":
        return make_nw_model(
            dkf.X_train_, dkf.x_mean_, dkf.x_scale_,
            Y_train=dkf.Z_train_, bandwidth=dkf.bandwidth_, **q_kwargs,
        )
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType

    model = convert_sklearn(
        dkf.regressor_,
        initial_types=[(INPUT_NAME, DoubleTensorType([None, dkf.n_features_in_]))],
        target_opset={"": OPSET},
    )
    graph = model.graph
    f_out = graph.output[0].name
    x_train = dkf.X_train_ if dkf.X_train_ is not None else np.zeros((1, dkf.n_features_in_))
    nodes, inits, outputs = nw_nodes(
        x_train, dkf.x_mean_, dkf.x_scale_, prefix="dkfq_", **q_kwargs
    )
    graph.node.extend(nodes)
    graph.node.append(helper.make_node("Reshape", [f_out, "dkfq_f_shape"], [F_NAME]))
    graph.initializer.extend(inits)
    graph.initializer.append(
        onnx.numpy_helper.from_array(
            np.array([-1, dkf.n_states_], dtype=np.int64), name="dkfq_f_shape"
        )
    )
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info(
                F_NAME, onnx.TensorProto.DOUBLE, [None, dkf.n_states_]
            ),
            *outputs,
        ]
    )
    onnx.checker.check_model(model)
    return model


def make_session(model: Any) -> Any:
    """A single-threaded CPU onnxruntime session (fully optimised graph) for ``model``.

    Parameters
    ----------
    model : onnxruntime.InferenceSession, bytes, str, path or onnx.ModelProto
        A session is returned as is.

    Returns
    -------
    session : onnxruntime.InferenceSession
    """
    import onnxruntime as ort

    if isinstance(model, ort.InferenceSession):
        return model
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    elif not isinstance(model, bytes | bytearray):
        model = str(model)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def check_session(session: Any, n_features: int, n_states: int, warmup: int = 3) -> None:
    """Check a session's ``x -> f, Q`` interface and shapes, and warm it up.

    Parameters
    ----------
    session : onnxruntime.InferenceSession
    n_features, n_states : int
    warmup : int
        Dummy runs, so the first real step is not slow.

    Raises
    ------
    ModelBundleError
        If the names or the output shapes are not those of a DKF observation model.
    """
    ins = [i.name for i in session.get_inputs()]
    outs = [o.name for o in session.get_outputs()]
    if ins != [INPUT_NAME] or outs[:2] != [F_NAME, Q_NAME]:
        raise ModelBundleError(
            f"ONNX model must have input ['x'] and outputs ['f', 'Q'], got inputs {ins}, "
            f"outputs {outs}"
        )
    dummy = np.zeros((1, n_features))
    for _ in range(max(int(warmup), 1)):
        f, Q = session.run(None, {INPUT_NAME: dummy})[:2]
    if f.shape != (1, n_states) or Q.shape != (1, n_states, n_states):
        raise ModelBundleError(
            f"ONNX model outputs f {f.shape}, Q {Q.shape}; expected (1, {n_states}) and "
            f"(1, {n_states}, {n_states})"
        )


def dkf_to_dict(dkf: DiscriminativeKalmanFilter) -> dict[str, Any]:
    """The filter's parameters and small matrices as a JSON-able dict (no training data).

    Together with :func:`dkf_to_onnx` this is the model bundle: ``from_dict(d).use_onnx(model)``
    gives a filter whose ``step``/``predict`` equal this one's.
    """
    dkf._check_fitted()

    def arr(a: np.ndarray | None) -> list | None:
        return None if a is None else np.asarray(a, dtype=np.float64).tolist()

    return {
        "kind": "DiscriminativeKalmanFilter",
        "format_version": FORMAT_VERSION,
        "params": {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in dkf.get_params().items()
        },
        "n_features": int(dkf.n_features_in_),
        "n_states": int(dkf.n_states_),
        "A": arr(dkf.A_),
        "Gamma": arr(dkf.Gamma_),
        "S": arr(dkf.S_),
        "z_mean": arr(dkf.z_mean_),
        "x_mean": arr(dkf.x_mean_),
        "x_scale": arr(dkf.x_scale_),
        "Q_add": arr(dkf.Q_add_),
        "bandwidth": dkf.bandwidth_,
        "q_bandwidth": dkf.q_bandwidth_,
    }


def dkf_from_dict(cls: type, state: dict[str, Any]) -> DiscriminativeKalmanFilter:
    """Rebuild a filter of class ``cls`` from :func:`dkf_to_dict`; call ``use_onnx`` before filtering."""
    try:
        if state.get("kind") != "DiscriminativeKalmanFilter":
            raise ModelBundleError(f"not a DKF dict: kind={state.get('kind')!r}")
        if state.get("format_version") != FORMAT_VERSION:
            raise ModelBundleError(
                f"unsupported DKF format_version {state.get('format_version')!r}, "
                f"expected {FORMAT_VERSION}"
            )
        params = dict(state["params"])
        if isinstance(params.get("hidden_layer_sizes"), list):
            params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        dkf = cls(**params)
        d = int(state["n_states"])
        dkf.n_features_in_ = int(state["n_features"])
        dkf.n_states_ = d
        mats = {}
        for key, shape in (("A", (d, d)), ("Gamma", (d, d)), ("S", (d, d)), ("z_mean", (d,))):
            mats[key] = np.asarray(state[key], dtype=np.float64)
            if mats[key].shape != shape or not np.all(np.isfinite(mats[key])):
                raise ModelBundleError(
                    f"DKF dict entry {key!r} must be finite with shape {shape}, "
                    f"got {mats[key].shape}"
                )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ModelBundleError):
            raise
        raise ModelBundleError(f"malformed DKF dict: {exc!r}") from exc
    dkf.A_, dkf.Gamma_, dkf.S_, dkf.z_mean_ = mats["A"], mats["Gamma"], mats["S"], mats["z_mean"]
    dkf.S_inv_ = _sym_pd_inv(dkf.S_, "stationary covariance S")
    dkf.x_mean_ = np.asarray(state.get("x_mean"), dtype=np.float64)
    dkf.x_scale_ = np.asarray(state.get("x_scale"), dtype=np.float64)
    dkf.Q_add_ = np.asarray(state.get("Q_add"), dtype=np.float64)
    dkf.bandwidth_ = state.get("bandwidth")
    dkf.q_bandwidth_ = state.get("q_bandwidth")
    dkf.regressor_ = None
    dkf.X_train_ = dkf.Z_train_ = dkf.R_train_ = dkf.Q_const_ = None
    dkf.onnx_session_ = None
    dkf.n_fallbacks_ = 0
    return dkf
