"""CycleGAN in plain PyTorch, written after the paper (Zhu et al. 2017) and the structure of its
reference implementation, as the peer that `cyclegan-train` is checked and benchmarked against.

Modes:
  save-pth ...     save a generator variant with torch.save (and torch.onnx.export) and its output on an input
  save-hostile ... write .pth files whose loading would run code
  parity DIR   load DIR/weights_*.safetensors and DIR/inputs.safetensors, write DIR/torch_out.safetensors
               and DIR/torch_losses.json (forward passes and the losses of consecutive training steps)
  bench ...    time training steps and generator inference; print one JSON line
  thop ...     thop's MACs and parameters of a generator at a size; print one JSON line
"""
import argparse
import json
import time

import torch
import torch.nn as nn


def instance_norm(ch, affine=False):
    return nn.InstanceNorm2d(ch, affine=affine, track_running_stats=False)


class ResnetBlock(nn.Module):
    def __init__(self, dim, affine=False, bias=True):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), instance_norm(dim, affine), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), instance_norm(dim, affine))

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """`affine` and `bias` give the variants other PyTorch code bases use (the reference's
    defaults for instance norm are affine=False, bias=True)."""

    def __init__(self, ngf=64, n_blocks=9, affine=False, bias=True):
        super().__init__()
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7, bias=bias), instance_norm(ngf, affine), nn.ReLU(True)]
        for i in range(2):
            m = 2 ** i
            layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, stride=2, padding=1, bias=bias),
                       instance_norm(ngf * m * 2, affine), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, affine, bias) for _ in range(n_blocks)]
        for i in range(2):
            m = 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                       instance_norm(ngf * m // 2, affine), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class SeparableConv(nn.Sequential):
    """Depthwise 3x3, instance norm, pointwise 1x1: GAN Compression's `SeparableConv2d`."""

    def __init__(self, dim, affine=False):
        super().__init__(nn.Conv2d(dim, dim, 3, groups=dim), instance_norm(dim, affine), nn.Conv2d(dim, dim, 1))


class MobileResnetBlock(nn.Module):
    def __init__(self, dim, affine=False):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), SeparableConv(dim, affine), instance_norm(dim, affine), nn.ReLU(True),
            nn.ReflectionPad2d(1), SeparableConv(dim, affine), instance_norm(dim, affine))

    def forward(self, x):
        return x + self.conv_block(x)


class MobileResnetGenerator(ResnetGenerator):
    """The edge student: the ResNet generator with depthwise-separable residual blocks."""

    def __init__(self, ngf=16, n_blocks=9, affine=False):
        super().__init__(ngf, n_blocks, affine)
        layers = list(self.model)
        layers[10:10 + n_blocks] = [MobileResnetBlock(ngf * 4, affine) for _ in range(n_blocks)]
        self.model = nn.Sequential(*layers)


class NLayerDiscriminator(nn.Module):
    def __init__(self, ndf=64, n_layers=3):
        super().__init__()
        layers = [nn.Conv2d(3, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=True),
                       instance_norm(ndf * mult), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


def init_weights(net, gain=0.02):
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class CycleGAN:
    """The four networks and one optimisation step as in the reference `optimize_parameters`.
    The image pool is left out: while it fills up (the first pool_size fakes) it returns its input."""

    def __init__(self, ngf, n_blocks, ndf, n_layers, lr=2e-4, beta1=0.5, lambda_a=10.0, lambda_b=10.0, lambda_idt=0.5):
        self.G_A, self.G_B = ResnetGenerator(ngf, n_blocks), ResnetGenerator(ngf, n_blocks)
        self.D_A, self.D_B = NLayerDiscriminator(ndf, n_layers), NLayerDiscriminator(ndf, n_layers)
        for net in (self.G_A, self.G_B, self.D_A, self.D_B):
            init_weights(net)
        self.opt_G = torch.optim.Adam(list(self.G_A.parameters()) + list(self.G_B.parameters()), lr=lr, betas=(beta1, 0.999))
        self.opt_D = torch.optim.Adam(list(self.D_A.parameters()) + list(self.D_B.parameters()), lr=lr, betas=(beta1, 0.999))
        self.lambda_a, self.lambda_b, self.lambda_idt = lambda_a, lambda_b, lambda_idt

    @staticmethod
    def mse_to(pred, target):
        return ((pred - target) ** 2).mean()

    def step(self, real_a, real_b):
        l1 = lambda x, y: (x - y).abs().mean()
        fake_b = self.G_A(real_a)
        rec_a = self.G_B(fake_b)
        fake_a = self.G_B(real_b)
        rec_b = self.G_A(fake_a)
        for d in (self.D_A, self.D_B):
            d.requires_grad_(False)
        self.opt_G.zero_grad()
        idt_a = l1(self.G_A(real_b), real_b) * self.lambda_b * self.lambda_idt
        idt_b = l1(self.G_B(real_a), real_a) * self.lambda_a * self.lambda_idt
        g_a = self.mse_to(self.D_A(fake_b), 1.0)
        g_b = self.mse_to(self.D_B(fake_a), 1.0)
        cycle_a = l1(rec_a, real_a) * self.lambda_a
        cycle_b = l1(rec_b, real_b) * self.lambda_b
        (g_a + g_b + cycle_a + cycle_b + idt_a + idt_b).backward()
        self.opt_G.step()
        for d in (self.D_A, self.D_B):
            d.requires_grad_(True)
        self.opt_D.zero_grad()
        d_a = (self.mse_to(self.D_A(real_b), 1.0) + self.mse_to(self.D_A(fake_b.detach()), 0.0)) * 0.5
        d_b = (self.mse_to(self.D_B(real_a), 1.0) + self.mse_to(self.D_B(fake_a.detach()), 0.0)) * 0.5
        (d_a + d_b).backward()
        self.opt_D.step()
        return {"D_A": d_a.item(), "G_A": g_a.item(), "cycle_A": cycle_a.item(), "idt_A": idt_a.item(),
                "D_B": d_b.item(), "G_B": g_b.item(), "cycle_B": cycle_b.item(), "idt_B": idt_b.item()}


def parity(args):
    from safetensors.torch import load_file, save_file
    meta = json.load(open(f"{args.dir}/parity.json"))
    gan = CycleGAN(meta["ngf"], meta["n_blocks"], meta["ndf"], meta["n_layers"])
    for name in ("G_A", "G_B", "D_A", "D_B"):
        getattr(gan, name).load_state_dict(load_file(f"{args.dir}/weights_{name}.safetensors"), strict=True)
    inputs = load_file(f"{args.dir}/inputs.safetensors")
    with torch.no_grad():
        out = {"G_A": gan.G_A(inputs["x"]), "D_A": gan.D_A(inputs["x"]),
               "G_B": gan.G_B(inputs["x"]), "D_B": gan.D_B(inputs["x"])}
    save_file({k: v.contiguous() for k, v in out.items()}, f"{args.dir}/torch_out.safetensors")
    losses = [gan.step(inputs[f"real_a{i}"], inputs[f"real_b{i}"]) for i in range(meta["steps"])]
    json.dump(losses, open(f"{args.dir}/torch_losses.json", "w"))


def save_pth(args):
    """A generator variant with random weights saved by torch.save, and its output on an input."""
    from safetensors.torch import load_file, save_file
    torch.manual_seed(args.seed)
    g = ResnetGenerator(args.ngf, args.n_blocks, affine=args.affine, bias=not args.no_bias)
    init_weights(g)
    with torch.no_grad():
        for p in g.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.1)
    state = g.state_dict()
    if args.rename_blocks:
        state = type(state)((k.replace("conv_block", "block"), v) for k, v in state.items())
    if args.pytorch03:
        save_like_pytorch03(g, args.out)
    else:
        torch.save(state, args.out, _use_new_zipfile_serialization=not args.legacy)
    if not args.input:
        return
    x = load_file(args.input)["x"]
    with torch.no_grad():
        y = g(x)
    save_file({"y": y.contiguous()}, args.output)
    if args.onnx:
        # As users export it: PyTorch's TorchScript-based exporter (the dynamo one needs
        # onnxscript), opset 17, the input's shape fixed.
        g.eval()
        torch.onnx.export(g, x, args.onnx, dynamo=False, opset_version=17)


def save_like_pytorch03(g, path):
    """The generator as PyTorch 0.3 saved it, as in the reference project's published models:
    the legacy stream, tensors rebuilt by `_rebuild_tensor` (not `_v2`), and running statistics
    in every InstanceNorm (which PyTorch 0.4 dropped; the reference deletes them on loading).
    PyTorch itself must read the file back to the same tensors."""
    import collections
    import pickle
    import struct
    import sys

    class StorageRef:
        def __init__(self, key, tensor):
            self.key, self.tensor = key, tensor.detach().contiguous().float()

    state = collections.OrderedDict()
    for name, m in g.named_modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            state[f"{name}.weight"] = m.weight
            if m.bias is not None:
                state[f"{name}.bias"] = m.bias
        elif isinstance(m, nn.InstanceNorm2d):
            state[f"{name}.running_mean"] = torch.zeros(m.num_features)
            state[f"{name}.running_var"] = torch.ones(m.num_features)
    storages = {}

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, StorageRef):
                return ("storage", torch.FloatStorage, obj.key, "cpu", obj.tensor.numel(), None)
            return None

        def reducer_override(self, obj):
            if isinstance(obj, torch.Tensor):
                ref = StorageRef(str(len(storages)), obj)
                storages[ref.key] = ref
                return torch._utils._rebuild_tensor, (ref, 0, tuple(obj.shape), tuple(ref.tensor.stride()))
            return NotImplemented

    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001,
                       dict(protocol_version=1001, little_endian=True, type_sizes=dict(short=2, int=4, long=4))):
            pickle.dump(header, f, protocol=2)
        Pickler(f, protocol=2).dump(state)
        keys = sorted(storages, key=int)
        pickle.dump(keys, f, protocol=2)
        for key in keys:
            t = storages[key].tensor
            f.write(struct.pack("<q", t.numel()))
            f.write(t.numpy().tobytes())
    back = torch.load(path, weights_only=False)
    assert list(back) == list(state) and all(torch.equal(back[k], state[k].detach()) for k in state), "not read back"


def save_hostile(args):
    """Files that must be refused: a pickle whose loading would run a shell command, inside the
    zip container and as a bare (legacy-looking) stream."""
    import os
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {args.marker}",))

    torch.save({"model.1.weight": Payload()}, args.out + ".zip.pth")
    with open(args.out + ".legacy.pth", "wb") as f:
        pickle.dump({"model.1.weight": Payload()}, f, protocol=2)


def bench(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    gan = CycleGAN(args.ngf, args.n_blocks, 64, 3)
    real_a = torch.rand(1, 3, args.size, args.size) * 2 - 1
    real_b = torch.rand(1, 3, args.size, args.size) * 2 - 1
    for _ in range(args.warmup):
        gan.step(real_a, real_b)
    t0 = time.perf_counter()
    for _ in range(args.iters):
        gan.step(real_a, real_b)
    train_s = (time.perf_counter() - t0) / args.iters
    with torch.no_grad():
        for _ in range(args.warmup):
            gan.G_A(real_a)
        t0 = time.perf_counter()
        for _ in range(args.iters):
            gan.G_A(real_a)
        infer_s = (time.perf_counter() - t0) / args.iters
    print(json.dumps({"train_step_s": train_s, "generator_s": infer_s, "torch": torch.__version__}))


def count(args):
    import thop
    cls = {"resnet": ResnetGenerator, "mobile": MobileResnetGenerator}[args.family]
    net = cls(ngf=args.ngf, n_blocks=args.n_blocks, affine=args.affine)
    macs, params = thop.profile(net, inputs=(torch.zeros(1, 3, args.height, args.width),), verbose=False)
    print(json.dumps({"macs": int(macs), "params": int(params), "thop": thop.__version__}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    pp = sub.add_parser("parity")
    pp.add_argument("dir")
    ps = sub.add_parser("save-pth")
    ps.add_argument("--out", required=True)
    ps.add_argument("--input", help="an input (safetensors `x`) whose output to write to --output")
    ps.add_argument("--output")
    ps.add_argument("--onnx", help="also write the generator as torch.onnx.export makes it")
    for name, default in (("ngf", 8), ("n_blocks", 6), ("seed", 0)):
        ps.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, default=default)
    for flag in ("affine", "no_bias", "rename_blocks", "legacy", "pytorch03"):
        ps.add_argument(f"--{flag.replace('_', '-')}", dest=flag, action="store_true")
    ph = sub.add_parser("save-hostile")
    ph.add_argument("--out", required=True)
    ph.add_argument("--marker", required=True)
    pb = sub.add_parser("bench")
    for name, default in (("size", 128), ("iters", 5), ("warmup", 2), ("threads", 2), ("ngf", 64), ("n_blocks", 9)):
        pb.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, default=default)
    pt = sub.add_parser("thop")
    pt.add_argument("--family", choices=("resnet", "mobile"), required=True)
    for name, default in (("ngf", 64), ("n_blocks", 9), ("height", 256), ("width", 256)):
        pt.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, default=default)
    pt.add_argument("--affine", action="store_true")
    args = p.parse_args()
    torch.set_grad_enabled(True)
    modes = {"parity": parity, "bench": bench, "save-pth": save_pth, "save-hostile": save_hostile, "thop": count}
    modes[args.mode](args)


if __name__ == "__main__":
    main()
