"""Train a model holding fastlstm.torch.LSTM with PyTorch's DistributedDataParallel (gloo, CPU):
each process takes its share of every batch, DDP averages the gradients. Run on one machine:

    torchrun --nproc_per_node=2 examples/torch_ddp.py

(or on several, with torchrun's --nnodes and --rdzv-endpoint). fastlstm brings no distribution
of its own: the kernels run inside each process, PyTorch's engine carries the rest.
"""

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

import fastlstm
import fastlstm.torch


class Forecaster(torch.nn.Module):
    def __init__(self, hidden=50):
        super().__init__()
        self.lstm = fastlstm.torch.LSTM(1, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, 1)

    def forward(self, x):
        _, (h_n, _) = self.lstm(x)
        return self.head(h_n[-1])


def main(steps=20, batch=64, T=24):
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    fastlstm.set_num_threads(max(1, torch.get_num_threads() // world))
    torch.manual_seed(0)  # the same initial weights everywhere (DDP also broadcasts rank 0's)
    model = DistributedDataParallel(Forecaster())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(1)
    t = torch.arange(T + 1, dtype=torch.float32)
    for step in range(steps):
        phase = torch.rand(batch, 1, generator=g) * 6.28
        series = torch.sin(0.3 * t + phase)                 # (batch, T + 1)
        x, y = series[:, :T, None], series[:, T:]
        mine = slice(rank * batch // world, (rank + 1) * batch // world)
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x[mine]), y[mine])
        loss.backward()
        opt.step()
        if rank == 0 and (step + 1) % 5 == 0:
            print(f"step {step + 1}: loss {loss.item():.4f}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
