"""The NumPy reference: the seed notebooks' code with its math unchanged.

This module is the oracle the fast kernels are tested against. It holds

* :class:`LSTM`, the from-scratch LSTM of notebook 001 (forward, BPTT with elementwise gradient
  clipping and SGD, ``train``), exactly as the notebook wrote it;
* :func:`lstm_step`, notebook 003's single cell step (without its debugging print);
* the notebooks' data helpers :func:`generate_pattern_data`, :func:`prepare_sequences` (001) and
  :func:`create_sequences` (000 and 002);
* :func:`lstm_process`, notebook 004's scalar LSTM that prints the gate table.

Nothing here is fast, and nothing here should be: readable NumPy is the point.
"""

from __future__ import annotations

import numpy as np

# The batched layer reference (torch.nn.LSTM semantics), the oracle of fastlstm.LSTMLayer.
from ._reference_layer import (  # noqa: F401  (re-exported)
    init_params,
    lstm_layer_backward,
    lstm_layer_forward,
    param_names,
)

__all__ = [
    "LSTM",
    "lstm_step",
    "sigmoid",
    "generate_pattern_data",
    "prepare_sequences",
    "create_sequences",
    "lstm_process",
    "lstm_layer_forward",
    "lstm_layer_backward",
    "init_params",
    "param_names",
]


class LSTM:
    """Notebook 001's LSTM from scratch (the reference fastlstm.LSTM mirrors).

    Weights ``Wf, Wi, Wc, Wo`` of shape ``(hidden_size, hidden_size + input_size)`` act on
    ``[h_prev, x_t]``; biases are ``(hidden_size, 1)`` columns; the head is ``Wy (output_size,
    hidden_size)``, ``by (output_size, 1)``. Weights are drawn from ``np.random`` in the order
    Wf, Wi, Wc, Wo, Wy, each ``randn * 0.01``.
    """

    def __init__(self, input_size, hidden_size, output_size, learning_rate=0.01):
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = output_size
        self.learning_rate = learning_rate

        # Initialize weights for the forget gate
        self.Wf = np.random.randn(hidden_size, hidden_size + input_size) * 0.01
        self.bf = np.zeros((hidden_size, 1))

        # Initialize weights for the input gate
        self.Wi = np.random.randn(hidden_size, hidden_size + input_size) * 0.01
        self.bi = np.zeros((hidden_size, 1))

        # Initialize weights for the cell gate (candidate values)
        self.Wc = np.random.randn(hidden_size, hidden_size + input_size) * 0.01
        self.bc = np.zeros((hidden_size, 1))

        # Initialize weights for the output gate
        self.Wo = np.random.randn(hidden_size, hidden_size + input_size) * 0.01
        self.bo = np.zeros((hidden_size, 1))

        # Initialize weights for the output layer
        self.Wy = np.random.randn(output_size, hidden_size) * 0.01
        self.by = np.zeros((output_size, 1))

    def sigmoid(self, x):
        """Sigmoid activation function"""
        return 1 / (1 + np.exp(-np.clip(x, -15, 15)))  # Clip to avoid overflow

    def forward(self, inputs):
        """Forward pass; returns ``(h_states, outputs)``, lists of column vectors."""
        # Store inputs for backpropagation
        self.inputs = inputs
        T = len(inputs)  # Number of time steps

        # Initialize lists to store states and gates
        self.f_gates = []  # Forget gates
        self.i_gates = []  # Input gates
        self.c_tildes = []  # Candidate cell states
        self.o_gates = []  # Output gates
        self.c_states = []  # Cell states
        self.h_states = []  # Hidden states
        outputs = []  # Outputs

        # Initialize the first hidden state and cell state with zeros
        h_prev = np.zeros((self.hidden_size, 1))
        c_prev = np.zeros((self.hidden_size, 1))

        for t in range(T):
            x_t = np.array(inputs[t]).reshape(-1, 1)
            concat = np.vstack((h_prev, x_t))

            f_t = self.sigmoid(np.dot(self.Wf, concat) + self.bf)
            self.f_gates.append(f_t)

            i_t = self.sigmoid(np.dot(self.Wi, concat) + self.bi)
            self.i_gates.append(i_t)

            c_tilde = np.tanh(np.dot(self.Wc, concat) + self.bc)
            self.c_tildes.append(c_tilde)

            o_t = self.sigmoid(np.dot(self.Wo, concat) + self.bo)
            self.o_gates.append(o_t)

            c_t = f_t * c_prev + i_t * c_tilde
            self.c_states.append(c_t)

            h_t = o_t * np.tanh(c_t)
            self.h_states.append(h_t)

            y_t = np.dot(self.Wy, h_t) + self.by
            outputs.append(y_t)

            h_prev = h_t
            c_prev = c_t

        return self.h_states, outputs

    def backward(self, targets):
        """BPTT, elementwise gradient clip to [-5, 5], SGD update; returns the loss / T."""
        T = len(targets)  # Number of time steps

        dWf, dWi, dWc, dWo, dWy = (np.zeros_like(self.Wf), np.zeros_like(self.Wi),
                                   np.zeros_like(self.Wc), np.zeros_like(self.Wo),
                                   np.zeros_like(self.Wy))
        dbf, dbi, dbc, dbo, dby = (np.zeros_like(self.bf), np.zeros_like(self.bi),
                                   np.zeros_like(self.bc), np.zeros_like(self.bo),
                                   np.zeros_like(self.by))

        loss = 0

        dh_next = np.zeros_like(self.h_states[0])
        dc_next = np.zeros_like(self.c_states[0])

        for t in reversed(range(T)):
            target_t = np.array(targets[t]).reshape(-1, 1)

            y_t = np.dot(self.Wy, self.h_states[t]) + self.by

            error = y_t - target_t
            loss += np.sum(error ** 2) / 2

            dWy += np.dot(error, self.h_states[t].T)
            dby += error

            dh = np.dot(self.Wy.T, error) + dh_next

            o_t = self.o_gates[t]
            c_t = self.c_states[t]
            c_tilde = self.c_tildes[t]
            i_t = self.i_gates[t]
            f_t = self.f_gates[t]

            c_prev = np.zeros_like(self.c_states[0]) if t == 0 else self.c_states[t-1]
            h_prev = np.zeros_like(self.h_states[0]) if t == 0 else self.h_states[t-1]

            do = dh * np.tanh(c_t)
            do_input = do * o_t * (1 - o_t)  # Derivative of sigmoid

            dc = dc_next + dh * o_t * (1 - np.tanh(c_t)**2)

            dc_tilde = dc * i_t
            dc_tilde_input = dc_tilde * (1 - c_tilde**2)  # Derivative of tanh

            di = dc * c_tilde
            di_input = di * i_t * (1 - i_t)  # Derivative of sigmoid

            df = dc * c_prev
            df_input = df * f_t * (1 - f_t)  # Derivative of sigmoid

            dc_next = dc * f_t

            x_t = np.array(self.inputs[t]).reshape(-1, 1)
            concat = np.vstack((h_prev, x_t))

            dWf += np.dot(df_input, concat.T)
            dWi += np.dot(di_input, concat.T)
            dWc += np.dot(dc_tilde_input, concat.T)
            dWo += np.dot(do_input, concat.T)

            dbf += df_input
            dbi += di_input
            dbc += dc_tilde_input
            dbo += do_input

            dconcat = (np.dot(self.Wf.T, df_input) + np.dot(self.Wi.T, di_input)
                       + np.dot(self.Wc.T, dc_tilde_input) + np.dot(self.Wo.T, do_input))

            dh_next = dconcat[:self.hidden_size]

        # Clip gradients to prevent exploding gradients
        for dparam in [dWf, dWi, dWc, dWo, dWy, dbf, dbi, dbc, dbo, dby]:
            np.clip(dparam, -5, 5, out=dparam)

        self.Wf -= self.learning_rate * dWf
        self.Wi -= self.learning_rate * dWi
        self.Wc -= self.learning_rate * dWc
        self.Wo -= self.learning_rate * dWo
        self.Wy -= self.learning_rate * dWy

        self.bf -= self.learning_rate * dbf
        self.bi -= self.learning_rate * dbi
        self.bc -= self.learning_rate * dbc
        self.bo -= self.learning_rate * dbo
        self.by -= self.learning_rate * dby

        return loss / T

    def train(self, X_train, y_train, epochs=100):
        """Train sequence by sequence; prints ``Epoch {e}, Loss: {l:.6f}`` every 10 epochs."""
        losses = []

        for epoch in range(epochs):
            total_loss = 0

            for i in range(len(X_train)):
                _, _ = self.forward(X_train[i])
                loss = self.backward(y_train[i])
                total_loss += loss

            avg_loss = total_loss / len(X_train)
            losses.append(avg_loss)

            if epoch % 10 == 0:
                print(f"Epoch {epoch}, Loss: {avg_loss:.6f}")

        return losses


def sigmoid(x):
    """Notebook 003's sigmoid (no clipping)."""
    return 1 / (1 + np.exp(-x))


def lstm_step(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
    """Notebook 003's single LSTM cell step; returns ``(h_t, c_t)``.

    Shapes: ``x_t (n_features,)``, ``h_prev, c_prev (n_hidden,)``, each ``W (n_hidden, n_hidden
    + n_features)`` acting on ``[h_prev, x_t]``, each bias ``(n_hidden,)``.
    """
    unioned = np.concatenate((h_prev, x_t), axis=0)

    i_t = sigmoid(np.dot(Wi, unioned) + bi)  # Input gate
    f_t = sigmoid(np.dot(Wf, unioned) + bf)  # Forget gate
    o_t = sigmoid(np.dot(Wo, unioned) + bo)  # Output gate

    c_t_candidate = np.tanh(np.dot(Wc, unioned) + bc)  # Cell state candidate
    c_t = f_t * c_prev + i_t * c_t_candidate  # Cell state
    h_t = o_t * np.tanh(c_t)  # Hidden state update

    return h_t, c_t


def generate_pattern_data(samples, pattern_length=3):
    """Notebook 001: a repeating ``sin`` pattern with N(0, 0.05) noise (draws from np.random).

    Note the notebook's default ``pattern_length=3`` samples sin at 0, pi and 2 pi, which are all
    (numerically) zero: that data is pure noise. ``fastlstm demo`` defaults to a longer pattern.
    """
    pattern = np.sin(np.linspace(0, 2 * np.pi, pattern_length))

    repetitions = int(np.ceil(samples / pattern_length))
    extended_pattern = np.tile(pattern, repetitions)[:samples]

    noise = np.random.normal(0, 0.05, samples)
    noisy_pattern = extended_pattern + noise

    return noisy_pattern


def prepare_sequences(data, seq_length):
    """Notebook 001: input windows ``data[i:i+L]``, targets shifted by one ``data[i+1:i+L+1]``."""
    X, y = [], []
    for i in range(len(data) - seq_length):
        X.append(data[i:i+seq_length])
        y.append(data[i+1:i+seq_length+1])
    return X, y


def create_sequences(X, y=None, lookback=2):
    """Windows of ``lookback`` steps and the value right after each window.

    Two notebooks use this name:

    * notebook 000: ``create_sequences(X, y, lookback=2)`` returns windows ``X[i:i+lookback]``
      and targets ``y[i+lookback]``;
    * notebook 002: ``create_sequences(data, seq_length)`` returns windows ``data[i:i+L]`` and
      targets ``data[i+L]``. An integer second argument is read as this form.

    Returns two arrays: ``(n, lookback, ...)`` windows and ``(n, ...)`` targets.
    """
    if y is not None and np.ndim(y) == 0 and isinstance(y, (int, np.integer)):
        y, lookback = None, int(y)
    if y is None:
        y = X
    X_seq, y_seq = [], []
    for i in range(len(X) - lookback):
        X_seq.append(X[i:i+lookback])
        y_seq.append(y[i+lookback])
    return np.array(X_seq), np.array(y_seq)


def lstm_process(sequence, parameters):
    """Notebook 004's scalar LSTM: returns ``(states, last_hidden)``.

    ``parameters`` maps "forget", "input", "cell", "output" to ``(w_input, w_hidden, bias)``;
    ``states`` is a list of dicts with the gate values and states of each step.
    """
    W_forget, W_hidden_forget, bias_forget = parameters["forget"]
    W_input, W_hidden_input, bias_input = parameters["input"]
    W_cell, W_hidden_cell, bias_cell = parameters["cell"]
    W_output, W_hidden_output, bias_output = parameters["output"]

    prev_hidden_state, prev_cell_state = 0, 0
    lstm_states = []
    hidden_state = 0

    for input_value in sequence:
        forget_gate = sigmoid(W_forget * input_value + W_hidden_forget * prev_hidden_state
                              + bias_forget)
        input_gate = sigmoid(W_input * input_value + W_hidden_input * prev_hidden_state
                             + bias_input)
        cell_candidate = np.tanh(W_cell * input_value + W_hidden_cell * prev_hidden_state
                                 + bias_cell)
        cell_state = forget_gate * prev_cell_state + input_gate * cell_candidate
        output_gate = sigmoid(W_output * input_value + W_hidden_output * prev_hidden_state
                              + bias_output)
        hidden_state = output_gate * np.tanh(cell_state)

        lstm_states.append({
            "Forget Gate": forget_gate, "Input Gate": input_gate,
            "Candidate Cell": cell_candidate, "Cell State": cell_state,
            "Output Gate": output_gate, "Hidden State": hidden_state,
        })

        prev_hidden_state, prev_cell_state = hidden_state, cell_state

    return lstm_states, hidden_state
