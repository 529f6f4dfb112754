"""Hook: a rewrite of the gradients that an optimizer runs before each step (``optimizer.addHook(hook)``).

A hook is called with the optimizer's state groups (``StateGroup``: flat arrays per dtype in global state, one
group per Variable in local state) and changes their ``grad`` arrays in place, each change one Elementwise
kernel launch.
"""


class Hook:
    """Base of the gradient hooks; hooks compose in the order they were added to the optimizer."""

    def __call__(self, groups):
        raise NotImplementedError

    def __repr__(self):
        attrs = ", ".join(f"{name}={value!r}" for name, value in vars(self).items())
        return f"{type(self).__name__}({attrs})"
