"""Sections 6 and 7 of the `mlp_tuning` source notebook: the hyper-parameter search and the
final model, with their instructions, solution cells and grade cells."""

from __future__ import annotations

from grader.manifest import Manifest
from solutions.mlp_tuning import config
from solutions.mlp_tuning.student import MLP, SEARCH_SPACE
from solutions.notebook_builder import (
    Cell,
    answer,
    before_you_submit,
    grade_cell,
    markdown,
    provided,
    solution,
)


def search_part(code: dict[str, str], manifest: Manifest) -> list[Cell]:
    stages = "\n".join(
        f"            | {i} | {s['epochs']} | {s['reports']} | {s['share']:.0%} | {s['keep']} |"
        for i, s in enumerate(config.STAGES, start=1)
    )
    return [
        markdown(
            f"""
            ## 6. Hyper-parameter search

            The sheet's hyper-parameters and their values are in `SEARCH_SPACE` (below), all
            but `epochs`, which each stage sets. A grid over them has tens of thousands of
            points, so we search at random and in stages, as the sheet suggests: a cheap
            **coarse** stage (one epoch, checked four times on the way) finds the settings that
            do not learn or that diverge and drops them; the next stage searches a **narrower**
            space, where the best coarse trials lay, with 5 epochs; the last one trains for 10.
            Every trial is one training run, scored by its **validation** accuracy after its
            last epoch.

            | stage | epochs per trial | checks per epoch | share of the trials | best kept |
            | --- | --- | --- | --- | --- |
{stages}

            [Optuna](https://optuna.org) does the bookkeeping. Each stage is an Optuna *study*
            (`optuna.create_study(direction="maximize", ...)`) with

            * a **sampler**, `optuna.samplers.TPESampler(seed=seed + k,
              n_startup_trials=min(10, n))` for the stage `k` (0, 1, 2) of `n` trials: random
              trials first, then trials drawn near the good ones; the same `seed` then gives
              the same search (random sampling, `RandomSampler(seed=seed + k)`, is fine too);
            * a **pruner**, `optuna.pruners.MedianPruner(n_startup_trials=3,
              n_warmup_steps=1)`: each trial reports its validation accuracy after every check
              (`trial.report(accuracy, step)`), and from the fourth trial on, a trial that is
              worse than the median of earlier trials at the same step (its first check
              excepted) is stopped (`trial.should_prune()` -> raise `optuna.TrialPruned()`).
              A diverging trial (loss `nan` or `inf`) is pruned at once;
            * a **storage**: an SQLite file (`"sqlite:///mlp_tuning.db"`) keeps every trial, so
              an interrupted search can be inspected and nothing is lost. Optuna refuses to
              create a study under a name the file already holds (`DuplicatedStudyError`), so
              name each stage's study after the run and the stage, e.g.
              `f"mlp_tuning-{{time.strftime('%Y%m%d-%H%M%S')}}-stage{{k + 1}}"`: running the
              search again then starts new studies beside the old ones. (Fixed names with
              `optuna.create_study(..., load_if_exists=True)` continue the old studies instead,
              their earlier trials included; that is accepted too.)

            The cell below gives you the pieces, each with its docstring: `SEARCH_SPACE`,
            `STAGES`, `BASELINE`, `suggest_config`, `train_and_validate` (one configuration
            trained with Adam and a cosine learning-rate decay, reporting to a pruning hook),
            `best_trials`, `narrow_space` and `stage_sizes`. Write `run_search` as its
            docstring says. Hints:

            * a queued trial that the stage's budget never reaches stays `WAITING` in the study
              for ever: queue **at most `n`**. The best of the earlier stages are re-run with
              more epochs, so they compete in the last stage;
            * `storage=None`: `optuna.storages.InMemoryStorage()`; `device=None`:
              `torch.device("cuda" if torch.cuda.is_available() else "cpu")`.

            The grader runs your `run_search` on a small data set with a few trials, in memory,
            on the CPU, with a test set that raises an error when it is touched: it checks that
            the test split is **never used**, that every finished trial's value is the
            validation accuracy it reported last (never a training accuracy), and that
            `best_trial` is the best of them. It does not check the sampler's or pruner's
            settings.
            """
        ),
        solution("search", code["search"]),
        grade_cell(manifest, "test_search", "Tests of the search."),
        provided(
            "wandb",
            """
            # Optional: log each finished trial to Weights & Biases (needs an account and a
            # network; nothing else in this notebook does).
            search_callbacks = []
            if USE_WANDB and not GRADING:
                import wandb

                def log_to_wandb(study, trial):
                    run = wandb.init(project="mlp_tuning", group=study.study_name,
                                     config=trial.params, reinit=True)
                    run.log({"val_accuracy": trial.value, "state": trial.state.name})
                    run.finish()

                search_callbacks.append(log_to_wandb)
            """,
        ),
        markdown(
            """
            ### 6.1 Run the search

            Choose a budget. On a Colab GPU one epoch takes roughly 10-20 s for batch size 64
            or 128 and several times longer for batch size 8 (the per-image transforms run on
            the CPU), so 30 trials take on the order of an hour. Try `n_trials=6` on a few
            thousand images first (`Subset(full_train_set, train_subset.indices[:5000])`, a
            subset of the dataset itself, as `standardisation_images` expects) to see that
            everything works. Whatever you run, the chosen configuration comes from the
            validation split.
            """
        ),
        solution(
            "train_search",
            """
            STORAGE = "sqlite:///mlp_tuning.db"  # yours to keep: not handed in
            if GRADING:
                study = None  # the search does not run while your notebook is graded
            else:
                started = time.perf_counter()
                ### BEGIN SOLUTION
                study = run_search(train_subset, val_subset, n_trials=30, storage=STORAGE,
                                   callbacks=search_callbacks)
                ### END SOLUTION
                print(f"search: {time.perf_counter() - started:.0f} s; best validation accuracy "
                      f"{study.best_value:.4f} with {study.best_params}")
            """,
        ),
        provided(
            "search_plots",
            """
            if study is not None:
                # The coarse stage varied every hyper-parameter: its trials show the most.
                coarse = optuna.load_study(study_name=study.user_attrs["stage_studies"][0],
                                           storage=STORAGE)
                optuna.visualization.matplotlib.plot_parallel_coordinate(coarse)
                plt.gcf().set_size_inches(14, 5)
                plt.show()
                optuna.visualization.matplotlib.plot_param_importances(coarse)
                plt.show()
            """,
        ),
        markdown(
            """
            **Question 6.** Which strategy did you use (budget, stages, sampler, pruner), and
            why? From the parallel-coordinates and importance plots: which hyper-parameters
            mattered most, which settings worked and which did not learn or diverged?
            """
        ),
        answer("answer_search"),
    ]


def largest_mlp_mb() -> float:
    """MiB of float32 parameters of the largest MLP in SEARCH_SPACE (784 inputs, 10 classes)."""
    largest = MLP(*(max(SEARCH_SPACE[key]["choices"]) for key in ("hidden_layers", "width")))
    return sum(p.numel() for p in largest.parameters()) * 4 / 1024**2


def final_part(manifest: Manifest) -> list[Cell]:
    model = manifest.model("mlp")
    return [
        markdown(
            f"""
            ## 7. The final model

            Train the chosen configuration (the best trial's parameters and the number of
            epochs of the last stage) on the training subset, and keep it. The cell writes

            * `{model.config}`: a JSON object with the keys `hidden_layers`, `width`,
              `activation`, `dropout` (the arguments of `MLP`), `normalise`, `flip`,
              `rotation`, `resized_crop`, `lr`, `batch_size` and `epochs`;
            * `{model.weights}`: `state_dict()` of `MLP(hidden_layers, width, activation,
              dropout)` built from that file, trained; at most {model.max_weights_mb:g} MB (the
              grader refuses a larger file; the largest MLP of the search space takes
              {largest_mlp_mb():.0f} MB).

            The grader builds your model from the first file and loads the second into it, so
            they must belong together. The test images are then prepared with your
            `make_transforms(mean_image, std_image, normalise=...)` evaluation transform.
            """
        ),
        solution(
            "train_final",
            """
            CONFIG_FILE, WEIGHTS_FILE = "final_config.json", "mlp_final.pt"
            if GRADING:
                # The grader runs this cell with your submitted files instead of training.
                with open(CONFIG_FILE) as handle:
                    final_config = json.load(handle)
                final_model = MLP(**{k: final_config[k] for k in ARCHITECTURE}).to(device)
                final_model.load_state_dict(
                    torch.load(WEIGHTS_FILE, map_location=device, weights_only=True)
                )
                final_curve = None
            else:
                ### BEGIN SOLUTION
                final_config = {**study.best_params, "epochs": STAGES[-1]["epochs"]}
                ### END SOLUTION
                with open(CONFIG_FILE, "w") as handle:
                    json.dump(final_config, handle, indent=2)
                final_model, final_curve = train_and_validate(
                    final_config, train_subset, val_subset, (mean_image, std_image),
                    final_config["epochs"], seed=0, device=device,
                )
                torch.save(final_model.state_dict(), WEIGHTS_FILE)
                print(f"final model: validation accuracy {final_curve['val_accuracy'][-1]:.4f}")
            """,
        ),
        provided(
            "final_curves",
            """
            if final_curve is not None:
                fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.5))
                epochs = range(1, len(final_curve["loss"]) + 1)
                ax_loss.plot(epochs, final_curve["loss"], marker="o")
                ax_loss.set(xlabel="epoch", ylabel="training loss (mean per image)")
                ax_acc.plot(epochs, final_curve["val_accuracy"], marker="o")
                ax_acc.set(xlabel="epoch", ylabel="validation accuracy")
                plt.show()
            """,
        ),
        markdown(
            """
            ### 7.1 Test accuracy, once

            Now, and only now, the test split: the accuracy of the final model, and ten random
            test images with the predicted and the true class (wrong ones in red).
            """
        ),
        provided(
            "test_accuracy",
            """
            _, final_eval_transform = make_transforms(
                mean_image, std_image, normalise=final_config["normalise"]
            )
            test_loader = DataLoader(TransformedSubset(test_set, final_eval_transform),
                                     batch_size=1000)
            print(f"test accuracy: {evaluate(final_model, test_loader, device):.4f}")

            picks = torch.randperm(len(test_set), generator=torch.Generator().manual_seed(1))[:10]
            fig, axes = plt.subplots(2, 5, figsize=(11, 5))
            final_model.eval()
            for ax, index in zip(axes.flat, picks.tolist()):
                image, label = test_set[index]
                with torch.no_grad():
                    x = final_eval_transform(image).unsqueeze(0).to(device)
                    guess = final_model(x).argmax(1).item()
                ax.imshow(image, cmap="gray")
                ax.set_title(f"predicted: {CLASSES[guess]}\\ntrue: {CLASSES[label]}", fontsize=9,
                             color="black" if guess == label else "red")
                ax.axis("off")
            plt.show()
            """,
        ),
        markdown(
            """
            **Question 7.** Compare the validation accuracy of your final model with its test
            accuracy. Which mistakes does it make on the ten images, and are they
            understandable?
            """
        ),
        answer("answer_final"),
        grade_cell(
            manifest,
            "test_final",
            "Your submitted configuration and weights: do they fit, and how accurate are they?",
        ),
        *before_you_submit(
            manifest,
            "the search and training cells load your files, a few minutes",
            "Not `mlp_tuning.db`: the search's own database stays with you.",
        ),
    ]
