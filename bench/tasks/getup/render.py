"""A short rendered rollout (GIF) of the final policy for the leaderboard page. MuJoCo picks its
OpenGL backend at import, so frames are drawn in a subprocess with ``MUJOCO_GL`` set (egl, then
osmesa); where neither works the rollout is skipped with one line."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.tasks.getup.evaluate import rollout


def save_rollout(method, strength: float) -> Path | None:
    """Roll the method's policy out from the first test state and write ``rollout.gif`` in the
    run folder; returns its path, or None where rendering is unavailable."""
    r = method.cfg["render"]
    pool, env = method.test_pool, method.env
    ep = rollout(
        env,
        method.policy(method.agent),
        pool["qpos"][0],
        pool["qvel"][0],
        strength,
        method.cfg["eval"]["steps"],
    )
    method.out_dir.mkdir(parents=True, exist_ok=True)
    out = method.out_dir / "rollout.gif"
    with tempfile.TemporaryDirectory() as tmp:
        poses = Path(tmp) / "poses.npy"
        np.save(poses, ep["qpos"][:: r["every"]])
        for backend in ("egl", "osmesa"):
            cmd = [
                sys.executable,
                "-m",
                "bench.tasks.getup.render",
                method.cfg["data"]["character"],
                str(poses),
                str(out),
            ]
            cmd += [str(r["width"]), str(r["height"]), str(r["fps"])]
            try:
                done = subprocess.run(
                    cmd, env=os.environ | {"MUJOCO_GL": backend}, capture_output=True, timeout=300
                )
            except subprocess.SubprocessError:
                continue
            if done.returncode == 0:
                return out
    print("getup: no OpenGL backend (egl, osmesa) renders here; rollout GIF skipped", file=sys.stderr)
    return None


def main(character: str, poses: str, out: str, width: str, height: str, fps: str) -> None:
    import mujoco
    from PIL import Image

    from bench.tasks.getup.env import CHARACTERS, asset_path

    model = mujoco.MjModel.from_xml_path(asset_path(CHARACTERS[character].xml))
    data = mujoco.MjData(model)
    renderer = mujoco.Renderer(model, int(height), int(width))
    cam = mujoco.MjvCamera()
    cam.type, cam.distance, cam.elevation, cam.azimuth = mujoco.mjtCamera.mjCAMERA_FREE, 3.5, -10.0, 90.0
    frames = []
    for q in np.load(poses):
        data.qpos[:] = q
        mujoco.mj_forward(model, data)
        cam.lookat[:] = [data.qpos[0], 0.0 if CHARACTERS[character].planar else data.qpos[1], 0.7]
        renderer.update_scene(data, cam)
        frames.append(Image.fromarray(renderer.render()))
    frames[0].save(out, save_all=True, append_images=frames[1:], duration=int(1000 / int(fps)), loop=0)


if __name__ == "__main__":
    main(*sys.argv[1:])
