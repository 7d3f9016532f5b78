"""SLURM: batch scripts for recipes, ensemble members and recipe lists, `sbatch` submission, the
state of the toolkit's jobs, and Apptainer images inside the jobs.

A job runs the same `toolkit run RECIPE --run-dir RUN_FOLDER` a user would run, through `srun`
(one task per device, so Lightning reads the layout from SLURM). The run folder is made at
submit time and named in the script, so a requeued job (preemption, time limit, `scontrol
requeue`) lands in the same folder and resumes its checkpoint exactly.
"""
