#include "repro/repro.h"

#include <gtest/gtest.h>

#include "core/temp_dir.h"

namespace kiln {
namespace {

const char kHead[] = "apiVersion: kiln.dev/v1\nname: app\nversion: 1.0.0\n";

TEST(PlanSourceCopy, TheTemplatesFolderAlone) {
  TempDir dir;
  dir.Write("app/kiln.yaml", std::string(kHead) + "extends: stock\n");
  dir.Write("stock/stock.yaml", "apiVersion: kiln.dev/v1\n");
  LoadOptions o;
  o.path = dir.path() + "/app/kiln.yaml";
  o.template_path = {dir.path() + "/stock"};
  SourceCopyPlan plan = PlanSourceCopy(LoadTemplate(o), o);
  // A stock template is found by name wherever the build runs.
  EXPECT_EQ(plan.root, dir.path() + "/app");
  EXPECT_EQ(plan.folders, std::vector<std::string>{dir.path() + "/app"});
}

TEST(PlanSourceCopy, RelativeParentsContextAndOciBaseKeepTheirPlaces) {
  TempDir dir;
  dir.Write("src/app/kiln.yaml",
            std::string(kHead) +
                "extends: ../../lib/base.yaml\nbase: oci:../../layouts/x\n");
  dir.Write("lib/base.yaml", "apiVersion: kiln.dev/v1\nextends: more.yaml\n");
  dir.Write("lib/more.yaml", "apiVersion: kiln.dev/v1\n");
  dir.Write("layouts/x/index.json", "{}");
  dir.Write("ctx/file", "x");
  LoadOptions o;
  o.path = dir.path() + "/src/app/kiln.yaml";
  o.context = dir.path() + "/ctx";
  SourceCopyPlan plan = PlanSourceCopy(LoadTemplate(o), o);
  EXPECT_EQ(plan.root, dir.path());
  EXPECT_EQ(plan.folders, (std::vector<std::string>{
                              dir.path() + "/ctx", dir.path() + "/layouts/x",
                              dir.path() + "/lib", dir.path() + "/src/app"}));
}

TEST(PlanSourceCopy, AFolderInsideAnotherIsCopiedWithIt) {
  TempDir dir;
  dir.Write("app/kiln.yaml", std::string(kHead) + "extends: parts/base.yaml\n");
  dir.Write("app/parts/base.yaml", "apiVersion: kiln.dev/v1\n");
  LoadOptions o;
  o.path = dir.path() + "/app/kiln.yaml";
  SourceCopyPlan plan = PlanSourceCopy(LoadTemplate(o), o);
  EXPECT_EQ(plan.folders, std::vector<std::string>{dir.path() + "/app"});
}

}  // namespace
}  // namespace kiln
