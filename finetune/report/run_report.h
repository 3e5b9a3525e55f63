// The training run report (report.html in the run folder): loss per iteration, loss and accuracy per
// epoch (the unfreeze epoch marked), the LR of every parameter group, the confusion matrix of the best
// checkpoint, a grid of augmented training images (exactly what the loader fed the model) and a grid of
// validation predictions from every class, mistakes first.
#pragma once
#include <string>
#include <utility>
#include <vector>
#include "finetune/trainer.h"
#include "finetune/report/html.h"

namespace rtune::finetune {

// `count` augmented samples spread over the dataset, as the loader makes them in `epoch`.
std::vector<ImageTile> augmented_tiles(const io::Loader& loader, const io::Dataset& ds, const std::vector<std::string>& names,
                                       int count, uint64_t epoch = 0);
// Tiles for the kept validation predictions ("true → predicted (p)"), framed green/red, in their order.
std::vector<ImageTile> prediction_tiles(const io::Loader& val, const finetune::EvalResult& eval,
                                        const std::vector<std::string>& names);

// Charts of one run's curves (per-iteration loss, per-epoch loss and accuracy, one LR line per group
// named in `lr_groups`), with the unfreeze marked where the history's phase changes.
std::string run_charts_html(const std::vector<finetune::EpochRecord>& history, const std::vector<finetune::StepRecord>& steps,
                            const std::vector<std::string>& lr_groups = {});
// Per-epoch table.
std::string epoch_table_html(const std::vector<finetune::EpochRecord>& history);

struct RunReportInputs {
  std::string title;
  std::vector<std::pair<std::string, std::string>> facts;
  const std::vector<finetune::EpochRecord>* history = nullptr;
  const std::vector<finetune::StepRecord>* steps = nullptr;
  const finetune::EvalResult* eval = nullptr;       // last validation; may be null
  const finetune::EvalResult* best_eval = nullptr;  // the best epoch's (confusion, per-class accuracy); may be null
  int64_t best_epoch = 0;
  std::vector<std::string> lr_groups;               // Trainer::lr_groups()
  std::vector<std::string> class_names;
  std::vector<ImageTile> train_tiles, val_tiles;
};
Report build_run_report(const RunReportInputs& in);

}  // namespace rtune::finetune
