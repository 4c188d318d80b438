"""Run an example script as a user does, alone or under paddle.distributed.launch, and
save every process's generator and critic (parameters and buffers) before and after
training, so the data-parallel tests can compare the processes' copies.

    python -m paddle.distributed.launch --nproc_per_node 2 tests/replicas.py OUT SCRIPT [overrides]

writes OUT/rank<N>_<initial|final>_<generator|critic>.pdparams, OUT/rank<N>_batch.npz:
the first critic batch (real samples and noise) the process trained on, and
OUT/rank<N>_trained_classifier when the process trained the MNIST metric's classifier, and
OUT/rank<N>_wrote.txt: the files the process wrote (each saved through os.replace).
"""

import importlib
import os
import runpy
import sys


def main(out_dir, script, overrides):
    sys.path.insert(0, os.path.dirname(script))
    import numpy
    import paddle

    # the modules the script imports
    parallel = importlib.import_module("gankit.parallel")
    trainer = importlib.import_module("gankit.trainer")
    classifier = importlib.import_module("gankit.classifier")
    run_init, run_finish, local_rows = (
        trainer.AlternatingTrainer.__init__,
        trainer.AlternatingTrainer.finish,
        parallel.local_rows,
    )

    def save(model, stage):
        for name, layer in (("generator", model.generator), ("critic", model.critic)):
            path = os.path.join(
                out_dir, f"rank{paddle.distributed.get_rank()}_{stage}_{name}.pdparams"
            )
            paddle.save(layer.state_dict(), path)

    def init_saving_the_initial_replicas(self, cfg, model, *args, **kwargs):
        save(model, "initial")
        run_init(self, cfg, model, *args, **kwargs)

    def finish_saving_the_final_replicas(self):
        save(self.model, "final")
        return run_finish(self)

    def local_rows_saving_the_first_critic_batch(batch):
        rows = local_rows(batch)
        path = os.path.join(out_dir, f"rank{paddle.distributed.get_rank()}_batch.npz")
        if isinstance(batch, dict) and "real" in batch and not os.path.exists(path):
            numpy.savez(path, **rows)
        return rows

    train_digit_classifier = classifier.train_digit_classifier

    def train_digit_classifier_noting_it(*args, **kwargs):
        rank = paddle.distributed.get_rank()
        open(os.path.join(out_dir, f"rank{rank}_trained_classifier"), "w").close()
        return train_digit_classifier(*args, **kwargs)

    replace = os.replace  # every file the examples write lands by os.replace (write_atomically)

    def replace_noting_the_file(source, destination, *args, **kwargs):
        replace(source, destination, *args, **kwargs)
        rank = paddle.distributed.get_rank()
        with open(os.path.join(out_dir, f"rank{rank}_wrote.txt"), "a") as f:
            f.write(f"{destination}\n")

    classifier.train_digit_classifier = train_digit_classifier_noting_it
    os.replace = replace_noting_the_file
    trainer.AlternatingTrainer.__init__ = init_saving_the_initial_replicas
    trainer.AlternatingTrainer.finish = finish_saving_the_final_replicas
    parallel.local_rows = local_rows_saving_the_first_critic_batch
    os.makedirs(out_dir, exist_ok=True)
    sys.argv = [script, *overrides]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3:])
