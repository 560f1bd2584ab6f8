"""KerasTuner search spaces: one per task, each mapping `hp` to the arguments of the task's builder in models/."""
