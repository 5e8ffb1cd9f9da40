# Notebook 000 (shared/seeds/000_179d3a1c769fcbb0.txt), its cell "Full Code with Formatted Output",
# copied verbatim: the independent path `fastlstm walkthrough` is compared against.
import numpy as np
from tabulate import tabulate

# Set random seed for reproducibility
np.random.seed(42)

# Generate our sample data
temperature = np.array([18.2, 19.5, 20.1, 22.4, 23.8, 25.0, 23.2, 21.5, 19.8, 17.5])
humidity = np.array([65.2, 62.8, 58.5, 55.0, 45.2, 42.1, 48.5, 52.3, 60.5, 67.8])
wind_speed = np.array([5.2, 6.8, 8.5, 10.2, 12.5, 14.8, 13.2, 11.5, 9.2, 6.5])
X = np.column_stack((temperature, humidity, wind_speed))

# Target: power consumption (kWh)
y = 2.5 * temperature - 0.5 * humidity + 1.2 * wind_speed + np.random.normal(0, 5, 10)

# Create sequences with lookback of 2 (predict the step after the sequence)
def create_sequences(X, y, lookback=2):
    X_seq, y_seq = [], []
    for i in range(len(X) - lookback):
        X_seq.append(X[i:i+lookback])
        y_seq.append(y[i+lookback])
    return np.array(X_seq), np.array(y_seq)

X_sequences, y_sequences = create_sequences(X, y, lookback=2)

# Define LSTM dimensions
n_features = 3  # Temperature, humidity, wind speed
n_hidden = 4    # Number of LSTM units
n_output = 1    # Power consumption prediction

# Initialize weight matrices and biases
# For simplicity, we'll use small random values
W_f = np.random.randn(n_hidden, n_features + n_hidden) * 0.01
b_f = np.zeros(n_hidden)

W_i = np.random.randn(n_hidden, n_features + n_hidden) * 0.01
b_i = np.zeros(n_hidden)

W_c = np.random.randn(n_hidden, n_features + n_hidden) * 0.01
b_c = np.zeros(n_hidden)

W_o = np.random.randn(n_hidden, n_features + n_hidden) * 0.01
b_o = np.zeros(n_hidden)

W_y = np.random.randn(n_output, n_hidden) * 0.01
b_y = np.zeros(n_output)

# Define activation functions
def sigmoid(x):
    return 1 / (1 + np.exp(-x))

def tanh(x):
    return np.tanh(x)

# Process all sequences with state persistence
# Initialize states once at the beginning
h_t = np.zeros(n_hidden)
C_t = np.zeros(n_hidden)

print("=" * 80)
print("LSTM FORWARD PASS WITH STATE PERSISTENCE ACROSS SEQUENCES")
print("=" * 80)
print(f"Processing {len(X_sequences)} sequences with lookback=2")
print(f"Initial states: h_0={h_t}, C_0={C_t}")
print("=" * 80)

predictions = []
all_states = []

for seq_idx, sequence in enumerate(X_sequences):
    print(f"\n{'=' * 30} SEQUENCE {seq_idx+1} {'=' * 30}")
    print(f"Days {seq_idx+1}-{seq_idx+2} → Predicting Day {seq_idx+3}")
    
    # Store states for this sequence
    sequence_states = []
    
    # Process each time step in the sequence
    for t in range(len(sequence)):
        x_t = sequence[t]
        day_num = seq_idx + t + 1
        
        # Concatenate input with previous hidden state
        combined = np.concatenate([x_t, h_t])
        
        # Calculate gate activations
        f_t = sigmoid(np.dot(W_f, combined) + b_f)
        i_t = sigmoid(np.dot(W_i, combined) + b_i)
        c_tilde = tanh(np.dot(W_c, combined) + b_c)
        o_t = sigmoid(np.dot(W_o, combined) + b_o)
        
        # Update cell state
        C_t_prev = C_t.copy()
        C_t = f_t * C_t + i_t * c_tilde
        
        # Update hidden state
        h_t_prev = h_t.copy()
        h_t = o_t * tanh(C_t)
        
        # Store states
        sequence_states.append({
            'day': day_num,
            'input': x_t,
            'forget_gate': f_t,
            'input_gate': i_t,
            'cell_candidate': c_tilde,
            'output_gate': o_t,
            'cell_state': C_t.copy(),
            'hidden_state': h_t.copy()
        })
        
        # Print gate values and states for this time step
        print(f"\n--- Time step {t+1} (Day {day_num}) ---")
        print("Input Features:")
        input_table = [
            ["Temperature", f"{x_t[0]:.2f}°C"],
            ["Humidity", f"{x_t[1]:.2f}%"],
            ["Wind Speed", f"{x_t[2]:.2f} km/h"]
        ]
        print(tabulate(input_table, headers=["Feature", "Value"], tablefmt="grid"))
        
        print("\nGate Values:")
        gates_table = [
            ["Forget Gate (f_t)", f"{f_t}"],
            ["Input Gate (i_t)", f"{i_t}"],
            ["Cell Candidate (c_tilde)", f"{c_tilde}"],
            ["Output Gate (o_t)", f"{o_t}"]
        ]
        print(tabulate(gates_table, headers=["Gate", "Values"], tablefmt="grid"))
        
        print("\nState Updates:")
        state_table = [
            ["Previous Cell State", f"{C_t_prev}"],
            ["New Cell State", f"{C_t}"],
            ["Change in Cell State", f"{C_t - C_t_prev}"],
            ["Previous Hidden State", f"{h_t_prev}"],
            ["New Hidden State", f"{h_t}"],
            ["Change in Hidden State", f"{h_t - h_t_prev}"]
        ]
        print(tabulate(state_table, headers=["State", "Values"], tablefmt="grid"))
    
    # Make prediction for this sequence
    y_pred = np.dot(W_y, h_t) + b_y
    predictions.append(y_pred[0])
    
    # Print prediction vs actual
    print(f"\n--- Prediction for Day {seq_idx+3} ---")
    pred_table = [
        ["Predicted Power Consumption", f"{y_pred[0]:.2f} kWh"],
        ["Actual Power Consumption", f"{y_sequences[seq_idx]:.2f} kWh"],
        ["Prediction Error", f"{y_pred[0] - y_sequences[seq_idx]:.2f} kWh"]
    ]
    print(tabulate(pred_table, headers=["Metric", "Value"], tablefmt="grid"))
    
    # Save states for this sequence
    all_states.append(sequence_states)
    
    print(f"\nFinal states after sequence {seq_idx+1}:")
    final_state_table = [
        ["Cell State (C_t)", f"{C_t}"],
        ["Hidden State (h_t)", f"{h_t}"]
    ]
    print(tabulate(final_state_table, headers=["State", "Values"], tablefmt="grid"))
    
    if seq_idx < len(X_sequences) - 1:
        print("\n→ These states will be used as initial states for the next sequence")

# Print overall prediction performance
print("\n" + "=" * 80)
print("OVERALL PREDICTION PERFORMANCE")
print("=" * 80)
mse = np.mean((np.array(predictions) - y_sequences) ** 2)
mae = np.mean(np.abs(np.array(predictions) - y_sequences))

performance_table = [
    ["Mean Squared Error", f"{mse:.4f}"],
    ["Mean Absolute Error", f"{mae:.4f}"]
]
print(tabulate(performance_table, headers=["Metric", "Value"], tablefmt="grid"))

# Print a summary of how states evolved across all sequences
print("\n" + "=" * 80)
print("SUMMARY OF STATE EVOLUTION ACROSS ALL SEQUENCES")
print("=" * 80)

# Extract cell state and hidden state norms for each time step
days = []
cell_state_norms = []
hidden_state_norms = []

for seq_idx, sequence_states in enumerate(all_states):
    for state in sequence_states:
        days.append(state['day'])
        cell_state_norms.append(np.linalg.norm(state['cell_state']))
        hidden_state_norms.append(np.linalg.norm(state['hidden_state']))

state_evolution = []
for i in range(len(days)):
    state_evolution.append([
        days[i],
        f"{cell_state_norms[i]:.4f}",
        f"{hidden_state_norms[i]:.4f}"
    ])

print(tabulate(state_evolution, 
               headers=["Day", "Cell State Norm", "Hidden State Norm"], 
               tablefmt="grid"))

print("\nNote: The norm values show how the 'magnitude' of the states changes over time")
print("Higher values indicate more information is being stored in the states")

