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

Standardisation and the squared distances fold into one affine map of the raw input
(:func:`kernel_logits`), so each kernel average is ``Gemm -> Softmax -> MatMul``; Softmax shifts by
the row maximum, so far-away inputs never underflow to 0/0. :class:`KernelAverage` is the numpy twin
(the DKF's numpy path), :func:`numpy_observation` rebuilds it from a saved graph.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from neurodeck.decoders.dkf.regression import KernelAverage, input_map, kernel_logits
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
    "numpy_observation",
    "make_nw_model",
    "gp_model",
    "dkf_to_onnx",
    "make_session",
    "dkf_to_dict",
    "dkf_from_dict",
    "kf_to_dict",
    "kf_from_dict",
    "time_steps",
    "select_backend",
]

FORMAT_VERSION = 1

OPSET = 17
INPUT_NAME = "x"
F_NAME = "f"
Q_NAME = "Q"


def _init(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(value), name=name)


def _kernel_branch(
    p: str, x: str, W: np.ndarray, b: np.ndarray, T: np.ndarray, out: str,
    nodes: list, inits: list, dtype: np.dtype,
) -> None:
    """Append ``out = Softmax(Gemm(x, W, b)) @ T`` (names ``{p}W``, ``{p}b``, ``{p}T``).

    ``x`` and the result are float64; with ``dtype=float32`` the kernel runs in float32 between
    two Casts (onnxruntime's float64 Exp and MatMul are several times slower than its float32).
    """
    inits += [_init(f"{p}W", W.astype(dtype)), _init(f"{p}b", b.astype(dtype)),
              _init(f"{p}T", T.astype(dtype))]
    mm_out = out if dtype == np.float64 else f"{p}out32"
    nodes += [
        helper.make_node("Gemm", [x, f"{p}W", f"{p}b"], [f"{p}logits"]),
        helper.make_node("Softmax", [f"{p}logits"], [f"{p}w"], axis=1),
        helper.make_node("MatMul", [f"{p}w", f"{p}T"], [mm_out]),
    ]
    if mm_out != out:
        nodes.append(helper.make_node("Cast", [mm_out], [out], to=TensorProto.DOUBLE))


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
    projection: np.ndarray | None = None,
    input_name: str = INPUT_NAME,
    f_name: str = F_NAME,
    q_name: str = Q_NAME,
    prefix: str = "nw_",
    dtype: str = "float32",
) -> tuple[list, list, list]:
    """Nodes, initializers and outputs computing NW ``f`` and/or ``Q`` from ``input_name``.

    Each kernel average is three nodes, ``Gemm -> Softmax -> MatMul`` (:func:`kernel_logits`);
    ``Q_add`` is folded into the averaged outer products (the weights sum to one).

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
    projection : ndarray, shape (n_features, n_dims) or None
        Linear map after standardisation; ``X_train`` is then in the projected space
        (:func:`kernel_logits`).
    input_name, f_name, q_name, prefix : str
        Tensor names; ``prefix`` keeps internal names unique when merged into another graph.
    dtype : {"float32", "float64"}
        Precision of the kernels (input and outputs are float64 either way). float32 is the
        default: in onnxruntime it is ~4x faster (measured: one 5000-point kernel 11.6 vs 46.6 us)
        and its relative error (~1e-6) is far below the regression's own error.

    Returns
    -------
    nodes : list of onnx.NodeProto
    initializers : list of onnx.TensorProto
    outputs : list of onnx.ValueInfoProto
    """
    X_train = np.asarray(X_train, dtype=np.float64)
    if X_train.ndim != 2 or X_train.shape[0] < 1:
        raise DecoderError(f"X_train must have shape (n_train, n_features), got {X_train.shape}")
    n_train = X_train.shape[0]
    if dtype not in ("float32", "float64"):
        raise DecoderError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    dt = np.dtype(dtype)
    p = prefix
    nodes: list = []
    inits: list = []
    outputs: list = []
    x = input_name
    kernels = Y_train is not None or R_train is not None
    if projection is not None and np.shape(projection)[1] < np.shape(projection)[0] and kernels:
        # project first (float64), then the kernels in the projected space: fewer products
        M, c = input_map(x_mean, x_scale, projection)
        inits += [_init(f"{p}proj_M", M), _init(f"{p}proj_c", c.reshape(1, -1))]
        nodes += [helper.make_node("MatMul", [input_name, f"{p}proj_M"], [f"{p}u0"]),
                  helper.make_node("Add", [f"{p}u0", f"{p}proj_c"], [f"{p}u"])]
        x = f"{p}u"
        k_dims = M.shape[1]
        x_mean, x_scale, projection = np.zeros(k_dims), np.ones(k_dims), None
    if dt == np.float32 and kernels:
        nodes.append(helper.make_node("Cast", [x], [f"{p}x32"], to=TensorProto.FLOAT))
        x = f"{p}x32"
    if Y_train is not None:
        Y_train = np.asarray(Y_train, dtype=np.float64)
        if Y_train.ndim != 2 or Y_train.shape[0] != n_train:
            raise DecoderError(f"Y_train must have shape ({n_train}, n_states), got {Y_train.shape}")
        W, b = kernel_logits(X_train, x_mean, x_scale, float(bandwidth), projection)
        _kernel_branch(f"{p}f_", x, W, b, Y_train, f_name, nodes, inits, dt)
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
            add = np.zeros((d, d)) if Q_add is None else np.asarray(Q_add, dtype=np.float64)
            W, b = kernel_logits(X_train, x_mean, x_scale, float(q_bandwidth), projection)
            T = (R_train + add[None]).reshape(n_train, d * d)
            _kernel_branch(f"{p}q_", x, W, b, T, f"{p}q_flat", nodes, inits, dt)
            inits.append(_init(f"{p}q_shape", np.array([-1, d, d], dtype=np.int64)))
            nodes.append(helper.make_node("Reshape", [f"{p}q_flat", f"{p}q_shape"], [q_name]))
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


def numpy_observation(model: onnx.ModelProto, prefix: str = "nw_") -> Any | None:
    """The numpy twin ``x -> (f, Q)`` of a pure NW graph made by :func:`make_nw_model`.

    Reads the folded kernels (``W``, ``b``, targets) back from the initializers, so a bundle can
    run its observation model in numpy without any pickle. ``None`` if ``model`` is not a pure NW
    graph with both ``f`` and ``Q`` kernels (e.g. an MLP export).

    Returns
    -------
    observation : callable or None
        ``X (n, n_features) -> f (n, n_states), Q (n, n_states, n_states)``.
    """
    inits = {
        t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer
    }
    names = [f"{prefix}{br}_{k}" for br in ("f", "q") for k in ("W", "b", "T")]
    ops = [n.op_type for n in model.graph.node]
    if not all(n in inits for n in names) or ops.count("Softmax") != 2 or len(ops) > 12:
        return None
    pre = None
    if f"{prefix}proj_M" in inits:  # the input is projected before the kernels
        pre = (inits[f"{prefix}proj_M"], inits[f"{prefix}proj_c"].ravel())
    f_avg = KernelAverage(*(inits[f"{prefix}f_{k}"] for k in ("W", "b", "T")), pre)
    q_avg = KernelAverage(*(inits[f"{prefix}q_{k}"] for k in ("W", "b", "T")), pre)
    d = f_avg.T.shape[1]

    def observation(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return f_avg(X), q_avg(X).reshape(-1, d, d)

    return observation


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
    n_in = np.asarray(x_mean).size
    inp = helper.make_tensor_value_info(INPUT_NAME, TensorProto.DOUBLE, [None, n_in])
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


def gp_model(pipeline: Any, Q_add: np.ndarray, q_scale: float = 1.0) -> onnx.ModelProto:
    """ONNX ``x -> f, Q`` of the DKF's Gaussian process (float64, equal to scikit-learn's).

    ``pipeline`` is ``make_pipeline(StandardScaler(), GaussianProcessRegressor(C * RBF + White,
    normalize_y=True))`` as fitted by the DKF. ``f`` is the predictive mean
    ``K(x, X) alpha * y_std + y_mean``; ``Q`` is ``q_scale * diag(var * y_std^2) + Q_add`` with
    ``var = c + noise - |K(x, X) L^-T|^2`` (clipped at 0), i.e. scikit-learn's
    ``predict(return_std=True)`` squared, plus the floor. skl2onnx cannot export this (its
    ``return_std`` fails for several targets). The ``n_train x n_train`` product of the variance
    runs in float32 (relative error ~1e-6 of ``c``, far below the fitted noise level); the mean
    stays float64.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
    Q_add : ndarray, shape (n_states, n_states)
    q_scale : float
        Scale of the predictive variance (chosen by the DKF's blocked CV).

    Returns
    -------
    model : onnx.ModelProto
    """
    scaler, gp = pipeline[0], pipeline[-1]
    try:
        c = float(gp.kernel_.k1.k1.constant_value)
        ell = np.asarray(gp.kernel_.k1.k2.length_scale, dtype=np.float64)
        noise = float(gp.kernel_.k2.noise_level)
    except AttributeError as exc:
        raise DecoderError(f"GP kernel {gp.kernel_} is not C * RBF + White: {exc}") from exc
    Xtr = np.asarray(gp.X_train_, dtype=np.float64) / ell  # anisotropic scales folded in
    n, n_feat = Xtr.shape
    alpha = np.asarray(gp.alpha_, dtype=np.float64).reshape(n, -1)
    d = alpha.shape[1]
    y_std = np.broadcast_to(np.asarray(gp._y_train_std, dtype=np.float64), (d,))
    y_mean = np.broadcast_to(np.asarray(gp._y_train_mean, dtype=np.float64), (d,))
    L_inv_T = np.linalg.inv(np.asarray(gp.L_, dtype=np.float64)).T
    inits = [
        _init("gp_mu", np.asarray(scaler.mean_, dtype=np.float64).reshape(1, n_feat)),
        _init("gp_div", (np.asarray(scaler.scale_, dtype=np.float64) * ell).reshape(1, n_feat)
              * np.ones((1, n_feat))),
        _init("gp_axes", np.array([1], dtype=np.int64)),
        _init("gp_XtrT", Xtr.T.copy()),
        _init("gp_xtr_sq", (Xtr**2).sum(axis=1).reshape(1, n)),
        _init("gp_minus2", np.array(-2.0)),
        _init("gp_zero", np.array(0.0)),
        _init("gp_neg_half", np.array(-0.5)),
        _init("gp_log_c", np.array(np.log(c))),
        _init("gp_alpha", alpha * y_std[None, :]),
        _init("gp_y_mean", y_mean.reshape(1, d).copy()),
        _init("gp_LinvT", L_inv_T.astype(np.float32)),
        _init("gp_prior_var", np.array(c + noise)),
        _init("gp_y_var", (float(q_scale) * y_std**2).reshape(1, d).copy()),
        _init("gp_unsq", np.array([2], dtype=np.int64)),
        _init("gp_eye", np.eye(d).reshape(1, d, d)),
        _init("gp_Q_add", np.asarray(Q_add, dtype=np.float64).reshape(1, d, d)),
    ]
    mk = helper.make_node
    nodes = [
        mk("Sub", [INPUT_NAME, "gp_mu"], ["gp_xc"]),
        mk("Div", ["gp_xc", "gp_div"], ["gp_xs"]),
        mk("Mul", ["gp_xs", "gp_xs"], ["gp_xs2"]),
        mk("ReduceSum", ["gp_xs2", "gp_axes"], ["gp_xsq"], keepdims=1),
        mk("MatMul", ["gp_xs", "gp_XtrT"], ["gp_cross"]),
        mk("Mul", ["gp_cross", "gp_minus2"], ["gp_cross2"]),
        mk("Add", ["gp_xsq", "gp_xtr_sq"], ["gp_sq"]),
        mk("Add", ["gp_sq", "gp_cross2"], ["gp_d2raw"]),
        mk("Max", ["gp_d2raw", "gp_zero"], ["gp_d2"]),
        mk("Mul", ["gp_d2", "gp_neg_half"], ["gp_l0"]),
        mk("Add", ["gp_l0", "gp_log_c"], ["gp_l"]),
        mk("Exp", ["gp_l"], ["gp_K"]),
        mk("MatMul", ["gp_K", "gp_alpha"], ["gp_fm"]),
        mk("Add", ["gp_fm", "gp_y_mean"], [F_NAME]),
        # the n_train^2 product in float32 (4x faster in onnxruntime); var >= the fitted noise
        mk("Cast", ["gp_K"], ["gp_K32"], to=TensorProto.FLOAT),
        mk("MatMul", ["gp_K32", "gp_LinvT"], ["gp_V"]),
        mk("Mul", ["gp_V", "gp_V"], ["gp_V2"]),
        mk("ReduceSum", ["gp_V2", "gp_axes"], ["gp_s32"], keepdims=1),
        mk("Cast", ["gp_s32"], ["gp_s"], to=TensorProto.DOUBLE),
        mk("Sub", ["gp_prior_var", "gp_s"], ["gp_var_raw"]),
        mk("Max", ["gp_var_raw", "gp_zero"], ["gp_var"]),
        mk("Mul", ["gp_var", "gp_y_var"], ["gp_vard"]),
        mk("Unsqueeze", ["gp_vard", "gp_unsq"], ["gp_vard3"]),
        mk("Mul", ["gp_vard3", "gp_eye"], ["gp_Qd"]),
        mk("Add", ["gp_Qd", "gp_Q_add"], [Q_NAME]),
    ]
    inp = helper.make_tensor_value_info(INPUT_NAME, TensorProto.DOUBLE, [None, n_feat])
    outs = [helper.make_tensor_value_info(F_NAME, TensorProto.DOUBLE, [None, d]),
            helper.make_tensor_value_info(Q_NAME, TensorProto.DOUBLE, [None, d, d])]
    graph = helper.make_graph(nodes, "gaussian_process_f_Q", [inp], outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="neurodeck.decoders.dkf.export")
    model.ir_version = min(model.ir_version, 9)
    onnx.checker.check_model(model)
    return model


def dkf_to_onnx(dkf: DiscriminativeKalmanFilter, dtype: str = "float32") -> onnx.ModelProto:
    """ONNX model ``x (n, n_features) float64 -> f (n, n_states), Q (n, n_states, n_states)``.

    NW: hand-built graph (:func:`make_nw_model`). MLP: skl2onnx export of the fitted
    scaler+MLP pipeline for ``f``, with an NW (or constant) ``Q`` branch added to the same
    graph. GP: hand-built graph of the predictive mean and variance (:func:`gp_model`).

    Parameters
    ----------
    dkf : DiscriminativeKalmanFilter
        Fitted, with its training data (not rebuilt from a dict).
    dtype : {"float32", "float64"}
        Precision of the NW kernels (see :func:`nw_nodes`).

    Returns
    -------
    model : onnx.ModelProto
    """
    dkf._check_fitted()
    if dkf.regressor_ is None and dkf.X_train_ is None:
        raise DecoderError("this DKF has no observation model to export (rebuilt from a dict)")
    if dkf.regressor == "gp":
        return gp_model(dkf.regressor_, dkf.Q_add_, dkf.q_scale_)
    q_kwargs: dict[str, Any] = (
        {"Q_const": dkf.Q_const_}
        if dkf.Q_const_ is not None
        else {"R_train": dkf.R_train_, "q_bandwidth": dkf.q_bandwidth_, "Q_add": dkf.Q_add_}
    )
    if dkf.regressor == "nw":
        return make_nw_model(
            dkf.X_train_, dkf.x_mean_, dkf.x_scale_,
            Y_train=dkf.Z_train_, bandwidth=dkf.bandwidth_, dtype=dtype,
            projection=dkf.projection_, **q_kwargs,
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
        x_train, dkf.x_mean_, dkf.x_scale_, prefix="dkfq_", dtype=dtype,
        projection=dkf.projection_ if dkf.Q_const_ is None else None, **q_kwargs
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
        "projection": arr(dkf.projection_),
        "q_scale": dkf.q_scale_,
        "cv": dkf.cv_,
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
    proj = state.get("projection")
    dkf.projection_ = None if proj is None else np.asarray(proj, dtype=np.float64)
    dkf.q_scale_ = float(state.get("q_scale") or 1.0)
    dkf.cv_ = state.get("cv")
    dkf.regressor_ = None
    dkf.X_train_ = dkf.Z_train_ = dkf.R_train_ = dkf.Q_const_ = None
    dkf.onnx_session_ = dkf.observation_ = None
    dkf.n_fallbacks_ = 0
    return dkf


def time_steps(dkf: DiscriminativeKalmanFilter, X: np.ndarray, n: int = 300) -> dict[str, float]:
    """Wall time of ``n`` online steps (f, Q and the update) with the filter's current backend.

    The online state is reset before and after.

    Parameters
    ----------
    dkf : DiscriminativeKalmanFilter
    X : ndarray, shape (n_rows, n_features)
        Feature rows, cycled.
    n : int

    Returns
    -------
    times : dict
        ``p50_us``, ``p99_us``.
    """
    import time

    X = np.asarray(X, dtype=np.float64)
    dkf.reset()
    for x in X[:5]:
        dkf.step(x)
    out = np.empty(n)
    pc = time.perf_counter
    for i in range(n):
        x = X[i % len(X)]
        t0 = pc()
        dkf.step(x)
        out[i] = pc() - t0
    dkf.reset()
    p50, p99 = np.percentile(out * 1e6, [50, 99])
    return {"p50_us": float(p50), "p99_us": float(p99)}


def select_backend(
    dkf: DiscriminativeKalmanFilter, model: onnx.ModelProto, X: np.ndarray, n: int = 300
) -> dict[str, Any]:
    """Time one online step with ``f``, ``Q`` in numpy and in onnxruntime; keep the faster.

    numpy is a candidate only where a bundle can run it without pickles, i.e. for the NW graph
    (:func:`numpy_observation`); MLP and GP are timed (scikit-learn) but always run in ONNX.
    Leaves ``dkf`` on the chosen backend.

    Parameters
    ----------
    dkf : DiscriminativeKalmanFilter
        Fitted, with its training data.
    model : onnx.ModelProto
        Its graph (:func:`dkf_to_onnx`).
    X : ndarray, shape (n_rows, n_features)
        Realistic feature rows (e.g. the training features).
    n : int
        Steps timed per backend.

    Returns
    -------
    choice : dict
        ``backend`` ("onnx" or "numpy") and ``numpy_p50_us``, ``numpy_p99_us``, ``onnx_p50_us``,
        ``onnx_p99_us``.
    """
    dkf.use_onnx(None)
    t_np = time_steps(dkf, X, n)
    dkf.use_onnx(model, warmup=20)
    t_ox = time_steps(dkf, X, n)
    twin = numpy_observation(model)
    backend = "numpy" if twin is not None and t_np["p50_us"] < t_ox["p50_us"] else "onnx"
    if backend == "numpy":
        dkf.use_numpy_twin(model)
    logger.info(
        "DKF step p50: numpy %.1f us, onnx %.1f us -> %s",
        t_np["p50_us"], t_ox["p50_us"], backend,
    )
    return {
        "backend": backend,
        "numpy_p50_us": round(t_np["p50_us"], 1),
        "numpy_p99_us": round(t_np["p99_us"], 1),
        "onnx_p50_us": round(t_ox["p50_us"], 1),
        "onnx_p99_us": round(t_ox["p99_us"], 1),
    }


_KF_MATRICES = ("A", "Gamma", "S", "H", "b", "R", "z_mean")


def kf_to_dict(kf: Any) -> dict[str, Any]:
    """A fitted :class:`KalmanFilter` as a JSON-able dict (all its parameters are small)."""
    kf._check_fitted()
    out: dict[str, Any] = {"kind": "KalmanFilter", "format_version": FORMAT_VERSION,
                           "n_features": int(kf.n_features_in_), "n_states": int(kf.n_states_)}
    for key in _KF_MATRICES:
        out[key] = np.asarray(getattr(kf, key + "_"), dtype=np.float64).tolist()
    return out


def kf_from_dict(state: dict[str, Any]) -> Any:
    """Rebuild a :class:`KalmanFilter` from :func:`kf_to_dict`, checking every shape."""
    from neurodeck.decoders.dkf.filters import KalmanFilter

    try:
        if state.get("kind") != "KalmanFilter":
            raise ModelBundleError(f"not a Kalman filter dict: kind={state.get('kind')!r}")
        if state.get("format_version") != FORMAT_VERSION:
            raise ModelBundleError(
                f"unsupported KF format_version {state.get('format_version')!r}, "
                f"expected {FORMAT_VERSION}"
            )
        d, p = int(state["n_states"]), int(state["n_features"])
        shapes = {"A": (d, d), "Gamma": (d, d), "S": (d, d), "H": (p, d), "b": (p,), "R": (p, p),
                  "z_mean": (d,)}
        kf = KalmanFilter()
        for key in _KF_MATRICES:
            arr = np.asarray(state[key], dtype=np.float64)
            if arr.shape != shapes[key] or not np.all(np.isfinite(arr)):
                raise ModelBundleError(
                    f"KF dict entry {key!r} must be finite with shape {shapes[key]}, "
                    f"got {arr.shape}"
                )
            setattr(kf, key + "_", arr)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelBundleError(f"malformed KF dict: {exc!r}") from exc
    kf.n_features_in_, kf.n_states_ = p, d
    return kf

