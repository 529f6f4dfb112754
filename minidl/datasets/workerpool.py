"""WorkerPool: worker processes that fill batches in shared memory, handed back in the order they were asked for.

``WorkerPool(job, workers, layout, slots)`` starts ``workers`` processes with the "spawn" context (a fresh
interpreter: nothing of the parent's threads, OpenMP pools or device contexts is copied) and ``slots`` batch
buffers in ``multiprocessing.shared_memory``, each holding one array per ``(shape, dtype)`` of ``layout``.
``run(tasks)`` yields ``(result, arrays)`` per task, in the tasks' order, keeping up to ``slots`` tasks in flight
(so the workers work ahead of the consumer); ``arrays`` are views of the slot's shared memory, valid until the
next item is asked for. A worker runs ``job.fill(task, arrays, note)``: it writes the batch into the arrays,
returns a small picklable result, and calls ``note(text)`` with what it is reading (a file name).

Robustness, the reason this file exists:

* every wait has a timeout (``poll`` seconds) after which the parent checks that every worker is alive, so a
  worker that dies (killed, out of memory, a crash in a decoder) ends the run within seconds with a DataError
  naming its exit status and the file it was reading, never a hang;
* a worker whose job raises sends the error's text back, and the run ends with it (the file is in the text);
* workers ignore SIGINT: a Ctrl-C (SIGINT to the whole process group) reaches the parent as KeyboardInterrupt,
  and ``close()`` (run by ``with`` and when ``run`` is left) stops the workers: a stop message, then after
  ``grace`` seconds SIGTERM, then SIGKILL, and the shared memory is unlinked. A worker whose parent is gone
  (killed outright) notices within ``poll`` seconds and exits, so no process is left behind;
* workers start with ``MINIDL_BACKEND=numpy`` and one OpenMP / BLAS thread: they decode on the host and never
  touch the device.
"""

import multiprocessing
import os
import queue
import signal
import traceback
from contextlib import contextmanager
from multiprocessing import shared_memory

import numpy

from minidl.errors import DataError

NOTE_BYTES = 1024
WORKER_ENVIRONMENT = {"MINIDL_BACKEND": "numpy", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                      "MKL_NUM_THREADS": "1"}


@contextmanager
def workerEnvironment():
    """os.environ as the spawned workers should inherit it, put back afterwards."""
    saved = {name: os.environ.get(name) for name in WORKER_ENVIRONMENT}
    os.environ.update(WORKER_ENVIRONMENT)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def slotArrays(blocks, layout):
    return [numpy.ndarray(shape, dtype, buffer=block.buf) for block, (shape, dtype) in zip(blocks, layout)]


def workerMain(job, slotNames, layout, tasks, results, note, parentPid, poll):
    """A worker's loop: take (task id, slot, task), fill the slot, answer; stop at None or when the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    slots = [[shared_memory.SharedMemory(name=name) for name in names] for names in slotNames]
    views = [slotArrays(blocks, layout) for blocks in slots]

    def noteText(text):
        note.value = text.encode("utf-8", "replace")[:NOTE_BYTES - 1]

    try:
        while True:
            try:
                message = tasks.get(timeout=poll)
            except queue.Empty:
                if os.getppid() != parentPid:
                    return
                continue
            if message is None:
                return
            taskId, slot, task = message
            try:
                results.put(("done", taskId, slot, job.fill(task, views[slot], noteText)))
            except Exception as error:  # sent back whole: the parent raises it with the worker's traceback
                text = str(error) if isinstance(error, DataError) else traceback.format_exc()
                results.put(("error", taskId, slot, text))
    finally:
        del views
        for blocks in slots:
            for block in blocks:
                block.close()
        results.cancel_join_thread()


class WorkerPool:
    def __init__(self, job, workers, layout, slots, poll=0.5, grace=2.0):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise DataError(f"a worker pool needs an integer number of workers >= 1, got {workers!r}")
        if slots < 1:
            raise DataError(f"a worker pool needs at least one batch slot, got {slots}")
        self.layout = [(tuple(shape), numpy.dtype(dtype)) for shape, dtype in layout]
        self.poll, self.grace = poll, grace
        self.processes, self.blocks = [], []
        context = multiprocessing.get_context("spawn")
        try:
            for _ in range(slots):
                self.blocks.append([shared_memory.SharedMemory(create=True, size=max(1, int(numpy.prod(shape)) *
                                                                                     dtype.itemsize))
                                    for shape, dtype in self.layout])
            self.views = [slotArrays(blocks, self.layout) for blocks in self.blocks]
            self.tasks, self.results = context.Queue(), context.Queue()
            self.notes = [context.Array("c", NOTE_BYTES, lock=False) for _ in range(workers)]
            names = [[block.name for block in blocks] for blocks in self.blocks]
            with workerEnvironment():
                for index in range(workers):
                    process = context.Process(
                        target=workerMain, name=f"minidl-data-{index}", daemon=True,
                        args=(job, names, self.layout, self.tasks, self.results, self.notes[index], os.getpid(),
                              poll))
                    process.start()
                    self.processes.append(process)
        except BaseException:
            self.close()
            raise
        self.free = list(range(slots))
        self.nextId = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def pids(self):
        return [process.pid for process in self.processes]

    def checkAlive(self):
        """DataError naming a worker that is no longer running (one that was reading a file, if any), its exit
        status and the file it was reading."""
        dead = [(index, process, self.notes[index].value.decode("utf-8", "replace"))
                for index, process in enumerate(self.processes) if not process.is_alive()]
        if not dead:
            return
        index, process, reading = max(dead, key=lambda item: bool(item[2]))
        code = process.exitcode
        signalled = code is not None and code < 0
        how = f"was killed by signal {-code}" if signalled else f"exited with status {code}"
        raise DataError(f"data worker {index} (pid {process.pid}) {how} while reading "
                        f"{reading or 'no file (between batches)'}: the run stops"
                        f"{'' if signalled else ' (its own error output, if any, is above)'}")

    def receive(self):
        """The next answer of any worker, checking every ``poll`` seconds that all of them are alive."""
        while True:
            try:
                return self.results.get(timeout=self.poll)
            except queue.Empty:
                self.checkAlive()

    def run(self, tasks):
        """Yield (result, arrays) for each task, in order (see the module's docstring). Left before its end (an
        error, a worker's error, the consumer stopping early), it closes the pool: tasks still in flight would
        otherwise answer a later run."""
        if not self.processes:
            raise DataError("this worker pool was closed")
        tasks, finished = iter(tasks), False
        submitted = received = self.nextId
        done, exhausted, holding = {}, False, None
        try:
            while True:
                if holding is not None:
                    self.free.append(holding)
                    holding = None
                while self.free and not exhausted:
                    task = next(tasks, None)
                    if task is None:
                        exhausted = True
                        break
                    self.tasks.put((submitted, self.free.pop(), task))
                    submitted += 1
                if received == submitted:
                    finished = True
                    self.nextId = submitted
                    return
                while received not in done:
                    kind, taskId, slot, payload = self.receive()
                    if kind == "error":
                        raise DataError(payload)
                    done[taskId] = (slot, payload)
                holding, result = done.pop(received)
                received += 1
                yield result, self.views[holding]
        finally:
            if not finished:
                self.close()

    def close(self):
        """Stop every worker (a stop message; SIGTERM, then SIGKILL after ``grace`` seconds) and free the memory."""
        processes, self.processes = self.processes, []
        if processes:
            for _ in processes:
                self.tasks.put(None)
            for process in processes:
                process.join(self.grace)
            for signalName in ("terminate", "kill"):
                for process in processes:
                    if process.is_alive():
                        getattr(process, signalName)()
                        process.join(self.grace)
            for channel in (self.tasks, self.results):
                channel.cancel_join_thread()
                channel.close()
        self.views = []
        for blocks in self.blocks:
            for block in blocks:
                block.close()
                block.unlink()
        self.blocks = []
