//! Participatory budgets: the commune sets aside a total (whole dirhams, integer arithmetic)
//! and its residents decide what it pays for, in four phases that only move forward:
//!
//! 1. PROPOSING — residents propose projects with an estimated cost;
//! 2. REVIEWING — the commune checks each one: feasible at a reviewed cost, or unfeasible with
//!    its reasons (voting cannot open while a project awaits review);
//! 3. VOTING — each eligible resident casts one ballot of feasible projects, within the
//!    budget's rule: projects whose costs add up to at most the total (UP_TO_TOTAL), or at most
//!    k projects (AT_MOST_K);
//! 4. RESULTS — computed once, in the transaction that enters the phase, and published.
//!
//! The result rule ([`compute_results`]): feasible projects are ranked by votes, most first;
//! a tie goes to the cheaper project (it leaves more of the total to the others), then to the
//! one proposed first. Going down the ranking, a project with at least one vote is funded when
//! its cost fits in what is left of the total; one that does not fit is skipped and the next
//! ones are still considered.
//!
//! Ballots and votes are rows (`budget_ballots`, `budget_votes`), counted with `COUNT(*)`:
//! no counter row that every voter would update (the hot-row trap of `performance-notes.md`).
//! A ballot reads its budget `FOR SHARE`, so the transaction computing the results (which
//! updates that row) waits for ballots in flight, and a ballot after it sees RESULTS.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use jamaa_auth::AssuranceLevel;
use jamaa_events::Outbox;
use jamaa_proto::events::v1 as events;
use jamaa_proto::participation::v1::{BudgetPhase, BudgetProjectStatus, BudgetVotingRule};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::error::Error;
use crate::storage::{budget, budget_ballot, budget_project, budget_vote};

/// The largest total a budget may have: ten billion dirhams.
pub const MAX_TOTAL_DIRHAMS: i64 = 10_000_000_000;
/// The most projects an AT_MOST_K ballot may be limited to.
pub const MAX_K: i32 = 100;

pub fn phase_to_db(phase: BudgetPhase) -> &'static str {
    match phase {
        BudgetPhase::Unspecified | BudgetPhase::Proposing => "proposing",
        BudgetPhase::Reviewing => "reviewing",
        BudgetPhase::Voting => "voting",
        BudgetPhase::Results => "results",
    }
}

pub fn phase_from_db(value: &str) -> BudgetPhase {
    match value {
        "reviewing" => BudgetPhase::Reviewing,
        "voting" => BudgetPhase::Voting,
        "results" => BudgetPhase::Results,
        _ => BudgetPhase::Proposing,
    }
}

/// The phase after `phase`, if any.
pub fn next_phase(phase: BudgetPhase) -> Option<BudgetPhase> {
    match phase {
        BudgetPhase::Unspecified => None,
        BudgetPhase::Proposing => Some(BudgetPhase::Reviewing),
        BudgetPhase::Reviewing => Some(BudgetPhase::Voting),
        BudgetPhase::Voting => Some(BudgetPhase::Results),
        BudgetPhase::Results => None,
    }
}

pub fn rule_to_db(rule: BudgetVotingRule) -> &'static str {
    match rule {
        BudgetVotingRule::Unspecified | BudgetVotingRule::UpToTotal => "up_to_total",
        BudgetVotingRule::AtMostK => "at_most_k",
    }
}

pub fn rule_from_db(value: &str) -> BudgetVotingRule {
    match value {
        "at_most_k" => BudgetVotingRule::AtMostK,
        _ => BudgetVotingRule::UpToTotal,
    }
}

pub fn project_status_to_db(status: BudgetProjectStatus) -> &'static str {
    match status {
        BudgetProjectStatus::Unspecified | BudgetProjectStatus::Proposed => "proposed",
        BudgetProjectStatus::Feasible => "feasible",
        BudgetProjectStatus::Unfeasible => "unfeasible",
    }
}

pub fn project_status_from_db(value: &str) -> BudgetProjectStatus {
    match value {
        "feasible" => BudgetProjectStatus::Feasible,
        "unfeasible" => BudgetProjectStatus::Unfeasible,
        _ => BudgetProjectStatus::Proposed,
    }
}

/// What a ballot may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VotingRule {
    /// Projects costing at most the total together.
    UpToTotal,
    /// At most this many projects.
    AtMost(usize),
}

impl VotingRule {
    pub fn of(row: &budget::Model) -> VotingRule {
        match rule_from_db(&row.voting_rule) {
            BudgetVotingRule::AtMostK => {
                VotingRule::AtMost(usize::try_from(row.max_projects.unwrap_or(1)).unwrap_or(1))
            }
            _ => VotingRule::UpToTotal,
        }
    }
}

/// Checks a ballot of projects with these `costs` against `rule` and the budget's `total`.
pub fn check_ballot(rule: VotingRule, total: i64, costs: &[i64]) -> Result<(), String> {
    if costs.is_empty() {
        return Err("choose at least one project".into());
    }
    match rule {
        VotingRule::AtMost(k) if costs.len() > k => Err(format!(
            "choose at most {k} projects (you chose {})",
            costs.len()
        )),
        VotingRule::AtMost(_) => Ok(()),
        VotingRule::UpToTotal => {
            let sum = costs
                .iter()
                .try_fold(0i64, |sum, cost| sum.checked_add(*cost))
                .ok_or("the chosen projects cost too much")?;
            if sum > total {
                Err(format!(
                    "the chosen projects cost {sum} dirhams together, more than the budget's {total}"
                ))
            } else {
                Ok(())
            }
        }
    }
}

/// One feasible project as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub id: Uuid,
    pub cost: i64,
    pub votes: i64,
}

/// One project's place in the results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranked {
    pub id: Uuid,
    pub votes: i64,
    /// 1 for the first.
    pub rank: i32,
    pub selected: bool,
}

/// The results of a budget of `total` (see the module docs for the rule): every project
/// ranked, and the funded ones' costs added up. Project ids are UUID v7, so the lower id is
/// the earlier proposed.
pub fn compute_results(total: i64, mut projects: Vec<Tally>) -> (Vec<Ranked>, i64) {
    projects.sort_by(|a, b| {
        b.votes
            .cmp(&a.votes)
            .then(a.cost.cmp(&b.cost))
            .then(a.id.cmp(&b.id))
    });
    let mut left = total;
    let mut ranked = Vec::with_capacity(projects.len());
    for (index, project) in projects.iter().enumerate() {
        let selected = project.votes > 0 && project.cost <= left;
        if selected {
            left -= project.cost;
        }
        ranked.push(Ranked {
            id: project.id,
            votes: project.votes,
            rank: i32::try_from(index + 1).unwrap_or(i32::MAX),
            selected,
        });
    }
    (ranked, total - left)
}

/// A budget with its counts.
#[derive(Debug, Clone)]
pub struct BudgetView {
    pub budget: budget::Model,
    pub ballot_count: i64,
    pub project_count: i64,
}

/// A budget to open, parsed.
pub struct NewBudget {
    pub commune_id: Uuid,
    pub title: String,
    pub description: String,
    pub total_dirhams: i64,
    pub rule: VotingRule,
    pub min_assurance: AssuranceLevel,
    pub created_by: Uuid,
}

/// A project to propose, parsed.
pub struct NewProject {
    pub budget_id: Uuid,
    pub commune_id: Uuid,
    pub author_id: Uuid,
    pub request_id: Uuid,
    pub title: String,
    pub description: String,
    pub cost_dirhams: i64,
}

/// A feasibility review.
pub enum Review {
    Feasible { cost_dirhams: i64, note: String },
    Unfeasible { reasons: String },
}

/// The participatory-budget operations.
pub struct Budgets {
    db: DatabaseConnection,
    outbox: Outbox,
}

impl Budgets {
    pub fn new(db: DatabaseConnection, outbox: Outbox) -> Self {
        Budgets { db, outbox }
    }

    pub async fn create(&self, new: NewBudget) -> Result<BudgetView, Error> {
        let now = Utc::now();
        let (rule, max_projects) = match new.rule {
            VotingRule::UpToTotal => (BudgetVotingRule::UpToTotal, None),
            VotingRule::AtMost(k) => (
                BudgetVotingRule::AtMostK,
                Some(i32::try_from(k).unwrap_or(MAX_K)),
            ),
        };
        let row = budget::ActiveModel {
            id: Set(Uuid::now_v7()),
            commune_id: Set(new.commune_id),
            title: Set(new.title),
            description: Set(new.description),
            total_dirhams: Set(new.total_dirhams),
            voting_rule: Set(rule_to_db(rule).to_string()),
            max_projects: Set(max_projects),
            min_assurance: Set(new.min_assurance.as_str().to_string()),
            phase: Set(phase_to_db(BudgetPhase::Proposing).to_string()),
            allocated_dirhams: Set(None),
            created_by: Set(new.created_by),
            created_at: Set(now),
            phase_changed_at: Set(now),
        }
        .insert(&self.db)
        .await?;
        tracing::info!(budget_id = %row.id, commune_id = %row.commune_id, "participatory budget opened");
        self.view(row).await
    }

    pub async fn get(&self, commune_id: Uuid, id: Uuid) -> Result<BudgetView, Error> {
        let row = find_budget(&self.db, commune_id, id).await?;
        self.view(row).await
    }

    /// The commune's budgets, newest first.
    pub async fn list(&self, commune_id: Uuid) -> Result<Vec<BudgetView>, Error> {
        let rows = budget::Entity::find()
            .filter(budget::Column::CommuneId.eq(commune_id))
            .order_by_desc(budget::Column::Id)
            .limit(200)
            .all(&self.db)
            .await?;
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            views.push(self.view(row).await?);
        }
        Ok(views)
    }

    /// Moves budget `id` from its phase to `to`, which must be the next one; entering RESULTS
    /// computes them. `BudgetPhaseChanged` commits with the change.
    pub async fn advance(
        &self,
        commune_id: Uuid,
        id: Uuid,
        to: BudgetPhase,
    ) -> Result<BudgetView, Error> {
        let txn = self.db.begin().await?;
        let row = find_budget(&txn, commune_id, id).await?;
        let from = phase_from_db(&row.phase);
        if next_phase(from) != Some(to) {
            return Err(Error::BudgetPhase(format!(
                "the budget is {}: it can move only to {}",
                phase_to_db(from),
                next_phase(from).map_or("no further phase", phase_to_db)
            )));
        }
        if to == BudgetPhase::Voting {
            let projects = budget_project::Entity::find()
                .filter(budget_project::Column::BudgetId.eq(row.id))
                .all(&txn)
                .await?;
            let pending = projects
                .iter()
                .filter(|p| project_status_from_db(&p.status) == BudgetProjectStatus::Proposed)
                .count();
            if pending > 0 {
                return Err(Error::BudgetPhase(format!(
                    "{pending} project(s) still await their feasibility review"
                )));
            }
            if !projects
                .iter()
                .any(|p| project_status_from_db(&p.status) == BudgetProjectStatus::Feasible)
            {
                return Err(Error::BudgetPhase(
                    "voting needs at least one feasible project".into(),
                ));
            }
        }
        // The guarded update takes the budget row's lock: ballots in flight (which read it FOR
        // SHARE) commit first, and the count below sees them all.
        let now = Utc::now();
        let moved = budget::Entity::update_many()
            .col_expr(budget::Column::Phase, Expr::value(phase_to_db(to)))
            .col_expr(budget::Column::PhaseChangedAt, Expr::value(now))
            .filter(budget::Column::Id.eq(row.id))
            .filter(budget::Column::Phase.eq(phase_to_db(from)))
            .exec(&txn)
            .await?;
        if moved.rows_affected != 1 {
            return Err(Error::BudgetPhase(
                "the budget changed phase meanwhile; reload it".into(),
            ));
        }
        let mut selected_projects = Vec::new();
        if to == BudgetPhase::Results {
            selected_projects = self.publish_results(&txn, &row).await?;
        }
        self.outbox
            .add(
                &txn,
                format!("budgets/{}", row.id),
                &events::BudgetPhaseChanged {
                    budget_id: row.id.to_string(),
                    commune_id: row.commune_id.to_string(),
                    title: row.title.clone(),
                    phase: to as i32,
                    selected_projects,
                },
            )
            .await?;
        self.outbox.commit(txn).await?;
        tracing::info!(budget_id = %id, phase = phase_to_db(to), "budget phase changed");
        self.get(commune_id, id).await
    }

    /// Inside `txn`: counts the votes, ranks the feasible projects and stores their votes,
    /// rank and selection. Returns the funded projects' titles, first ranked first.
    async fn publish_results(
        &self,
        txn: &impl ConnectionTrait,
        row: &budget::Model,
    ) -> Result<Vec<String>, Error> {
        let projects: Vec<budget_project::Model> = budget_project::Entity::find()
            .filter(budget_project::Column::BudgetId.eq(row.id))
            .filter(
                budget_project::Column::Status
                    .eq(project_status_to_db(BudgetProjectStatus::Feasible)),
            )
            .all(txn)
            .await?;
        let counts: Vec<(Uuid, i64)> = budget_vote::Entity::find()
            .select_only()
            .column(budget_vote::Column::ProjectId)
            .column_as(budget_vote::Column::CitizenId.count(), "votes")
            .filter(budget_vote::Column::BudgetId.eq(row.id))
            .group_by(budget_vote::Column::ProjectId)
            .into_tuple()
            .all(txn)
            .await?;
        let counts: HashMap<Uuid, i64> = counts.into_iter().collect();
        let tallies = projects
            .iter()
            .map(|project| Tally {
                id: project.id,
                cost: project.cost_dirhams,
                votes: counts.get(&project.id).copied().unwrap_or(0),
            })
            .collect();
        let (ranked, allocated) = compute_results(row.total_dirhams, tallies);
        let titles: HashMap<Uuid, &str> = projects
            .iter()
            .map(|project| (project.id, project.title.as_str()))
            .collect();
        let mut selected = Vec::new();
        for place in &ranked {
            budget_project::Entity::update_many()
                .col_expr(
                    budget_project::Column::Votes,
                    Expr::value(Some(place.votes)),
                )
                .col_expr(budget_project::Column::Rank, Expr::value(Some(place.rank)))
                .col_expr(
                    budget_project::Column::Selected,
                    Expr::value(Some(place.selected)),
                )
                .filter(budget_project::Column::Id.eq(place.id))
                .exec(txn)
                .await?;
            if place.selected {
                selected.push(titles.get(&place.id).copied().unwrap_or("").to_string());
            }
        }
        budget::Entity::update_many()
            .col_expr(
                budget::Column::AllocatedDirhams,
                Expr::value(Some(allocated)),
            )
            .filter(budget::Column::Id.eq(row.id))
            .exec(txn)
            .await?;
        Ok(selected)
    }

    /// A resident proposes a project while the budget is PROPOSING; the same author and
    /// `request_id` give back the first one.
    pub async fn propose(&self, new: NewProject) -> Result<budget_project::Model, Error> {
        if let Some(existing) = budget_project::Entity::find()
            .filter(budget_project::Column::AuthorId.eq(new.author_id))
            .filter(budget_project::Column::ClientRequestId.eq(new.request_id))
            .one(&self.db)
            .await?
        {
            return Ok(existing);
        }
        let row = find_budget(&self.db, new.commune_id, new.budget_id).await?;
        if phase_from_db(&row.phase) != BudgetPhase::Proposing {
            return Err(Error::BudgetPhase(
                "projects are proposed only while the budget is in its PROPOSING phase".into(),
            ));
        }
        if new.cost_dirhams > row.total_dirhams {
            return Err(Error::InvalidArgument(
                jamaa_server::status::FieldViolations::single(
                    "project.cost_dirhams",
                    format!(
                        "cannot be more than the budget's total of {} dirhams",
                        row.total_dirhams
                    ),
                ),
            ));
        }
        Ok(budget_project::ActiveModel {
            id: Set(Uuid::now_v7()),
            budget_id: Set(row.id),
            commune_id: Set(row.commune_id),
            author_id: Set(new.author_id),
            client_request_id: Set(new.request_id),
            title: Set(new.title),
            description: Set(new.description),
            cost_dirhams: Set(new.cost_dirhams),
            status: Set(project_status_to_db(BudgetProjectStatus::Proposed).to_string()),
            review_note: Set(None),
            votes: Set(None),
            rank: Set(None),
            selected: Set(None),
            created_at: Set(Utc::now()),
        }
        .insert(&self.db)
        .await?)
    }

    /// A budget's projects: ranked once the results are out, else in the order proposed.
    pub async fn projects(
        &self,
        commune_id: Uuid,
        budget_id: Uuid,
    ) -> Result<(BudgetView, Vec<budget_project::Model>), Error> {
        let view = self.get(commune_id, budget_id).await?;
        let mut projects = budget_project::Entity::find()
            .filter(budget_project::Column::BudgetId.eq(budget_id))
            .order_by_asc(budget_project::Column::Id)
            .limit(2000)
            .all(&self.db)
            .await?;
        if phase_from_db(&view.budget.phase) == BudgetPhase::Results {
            projects.sort_by_key(|project| (project.rank.unwrap_or(i32::MAX), project.id));
        }
        Ok((view, projects))
    }

    /// Records the feasibility review of project `id` while its budget is REVIEWING.
    pub async fn review(
        &self,
        commune_id: Uuid,
        id: Uuid,
        review: Review,
    ) -> Result<budget_project::Model, Error> {
        let project = budget_project::Entity::find_by_id(id)
            .filter(budget_project::Column::CommuneId.eq(commune_id))
            .one(&self.db)
            .await?
            .ok_or(Error::BudgetProjectNotFound(id))?;
        let row = find_budget(&self.db, commune_id, project.budget_id).await?;
        if phase_from_db(&row.phase) != BudgetPhase::Reviewing {
            return Err(Error::BudgetPhase(
                "projects are reviewed only while the budget is in its REVIEWING phase".into(),
            ));
        }
        let (status, cost, note) = match review {
            Review::Feasible { cost_dirhams, note } => {
                if cost_dirhams > row.total_dirhams {
                    return Err(Error::InvalidArgument(
                        jamaa_server::status::FieldViolations::single(
                            "cost_dirhams",
                            format!(
                                "cannot be more than the budget's total of {} dirhams",
                                row.total_dirhams
                            ),
                        ),
                    ));
                }
                (
                    BudgetProjectStatus::Feasible,
                    cost_dirhams,
                    Some(note).filter(|note| !note.is_empty()),
                )
            }
            Review::Unfeasible { reasons } => (
                BudgetProjectStatus::Unfeasible,
                project.cost_dirhams,
                Some(reasons),
            ),
        };
        budget_project::Entity::update_many()
            .col_expr(
                budget_project::Column::Status,
                Expr::value(project_status_to_db(status)),
            )
            .col_expr(budget_project::Column::CostDirhams, Expr::value(cost))
            .col_expr(budget_project::Column::ReviewNote, Expr::value(note))
            .filter(budget_project::Column::Id.eq(project.id))
            .exec(&self.db)
            .await?;
        budget_project::Entity::find_by_id(project.id)
            .one(&self.db)
            .await?
            .ok_or(Error::BudgetProjectNotFound(id))
    }

    /// Casts `citizen_id`'s one ballot for `project_ids` (distinct, checked by the caller)
    /// while budget `row` is VOTING. A second ballot is ALREADY_VOTED.
    pub async fn cast(
        &self,
        row: &budget::Model,
        citizen_id: Uuid,
        project_ids: &[Uuid],
    ) -> Result<(), Error> {
        let txn = self.db.begin().await?;
        let current = budget::Entity::find_by_id(row.id)
            .lock_shared()
            .one(&txn)
            .await?
            .ok_or(Error::BudgetNotFound(row.id))?;
        if phase_from_db(&current.phase) != BudgetPhase::Voting {
            return Err(Error::BudgetPhase(
                "ballots are cast only while the budget is in its VOTING phase".into(),
            ));
        }
        let feasible: HashMap<Uuid, i64> = budget_project::Entity::find()
            .filter(budget_project::Column::BudgetId.eq(row.id))
            .filter(
                budget_project::Column::Status
                    .eq(project_status_to_db(BudgetProjectStatus::Feasible)),
            )
            .all(&txn)
            .await?
            .into_iter()
            .map(|project| (project.id, project.cost_dirhams))
            .collect();
        let mut violations = jamaa_server::status::FieldViolations::new();
        let mut costs = Vec::with_capacity(project_ids.len());
        for (index, id) in project_ids.iter().enumerate() {
            match feasible.get(id) {
                Some(cost) => costs.push(*cost),
                None => violations.add(
                    format!("project_ids[{index}]"),
                    "is not a feasible project of this budget",
                ),
            }
        }
        if !violations.is_empty() {
            return Err(Error::InvalidArgument(violations));
        }
        check_ballot(VotingRule::of(&current), current.total_dirhams, &costs).map_err(
            |problem| {
                Error::InvalidArgument(jamaa_server::status::FieldViolations::single(
                    "project_ids",
                    problem,
                ))
            },
        )?;
        let inserted = budget_ballot::Entity::insert(budget_ballot::ActiveModel {
            budget_id: Set(row.id),
            citizen_id: Set(citizen_id),
            cast_at: Set(Utc::now()),
        })
        .on_conflict(
            OnConflict::columns([
                budget_ballot::Column::BudgetId,
                budget_ballot::Column::CitizenId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        if inserted != 1 {
            txn.rollback().await?;
            return Err(Error::AlreadyVoted);
        }
        budget_vote::Entity::insert_many(project_ids.iter().map(|project_id| {
            budget_vote::ActiveModel {
                budget_id: Set(row.id),
                project_id: Set(*project_id),
                citizen_id: Set(citizen_id),
            }
        }))
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        Ok(())
    }

    async fn view(&self, budget: budget::Model) -> Result<BudgetView, Error> {
        let ballots = budget_ballot::Entity::find()
            .filter(budget_ballot::Column::BudgetId.eq(budget.id))
            .count(&self.db)
            .await?;
        let projects = budget_project::Entity::find()
            .filter(budget_project::Column::BudgetId.eq(budget.id))
            .count(&self.db)
            .await?;
        Ok(BudgetView {
            budget,
            ballot_count: i64::try_from(ballots).unwrap_or(i64::MAX),
            project_count: i64::try_from(projects).unwrap_or(i64::MAX),
        })
    }
}

/// Budget `id` of `commune_id`; NOT_FOUND when unknown or of another commune.
pub async fn find_budget(
    db: &impl ConnectionTrait,
    commune_id: Uuid,
    id: Uuid,
) -> Result<budget::Model, Error> {
    budget::Entity::find_by_id(id)
        .filter(budget::Column::CommuneId.eq(commune_id))
        .one(db)
        .await?
        .ok_or(Error::BudgetNotFound(id))
}

/// Whether `ids` has no repeats.
pub fn distinct(ids: &[Uuid]) -> bool {
    ids.iter().collect::<HashSet<_>>().len() == ids.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn tally(n: u128, cost: i64, votes: i64) -> Tally {
        Tally {
            id: id(n),
            cost,
            votes,
        }
    }

    fn funded(ranked: &[Ranked]) -> Vec<Uuid> {
        ranked.iter().filter(|r| r.selected).map(|r| r.id).collect()
    }

    #[test]
    fn results_fund_down_the_ranking_skipping_what_does_not_fit() {
        // Total 1,000,000. By votes: C (500, 600k), A (400, 300k), D (300, 200k), B (200, 150k).
        // C fits (400k left), A fits (100k left), D does not (200k > 100k), B does not either.
        let (ranked, allocated) = compute_results(
            1_000_000,
            vec![
                tally(1, 300_000, 400),
                tally(2, 150_000, 200),
                tally(3, 600_000, 500),
                tally(4, 200_000, 300),
            ],
        );
        assert_eq!(
            ranked.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![id(3), id(1), id(4), id(2)]
        );
        assert_eq!(funded(&ranked), vec![id(3), id(1)]);
        assert_eq!(allocated, 900_000);
        assert_eq!(
            ranked.iter().map(|r| r.rank).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
    }

    #[test]
    fn a_project_that_does_not_fit_leaves_room_for_a_cheaper_one_below() {
        // Total 100: A (10 votes, 70), B (8 votes, 50), C (5 votes, 30). A fits, B does not
        // (50 > 30 left), C does (30 = 30 left).
        let (ranked, allocated) = compute_results(
            100,
            vec![tally(1, 70, 10), tally(2, 50, 8), tally(3, 30, 5)],
        );
        assert_eq!(funded(&ranked), vec![id(1), id(3)]);
        assert_eq!(allocated, 100);
    }

    #[test]
    fn ties_go_to_the_cheaper_then_to_the_earlier_proposed() {
        // Equal votes: the cheaper ranks first; equal votes and cost: the lower (earlier) id.
        let (ranked, _) =
            compute_results(100, vec![tally(9, 60, 7), tally(5, 40, 7), tally(2, 60, 7)]);
        assert_eq!(
            ranked.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![id(5), id(2), id(9)]
        );
        // 40 + 60 = 100: the third does not fit.
        assert_eq!(funded(&ranked), vec![id(5), id(2)]);
    }

    #[test]
    fn projects_without_votes_are_not_funded() {
        let (ranked, allocated) = compute_results(100, vec![tally(1, 10, 0), tally(2, 20, 1)]);
        assert_eq!(funded(&ranked), vec![id(2)]);
        assert_eq!(allocated, 20);
    }

    #[test]
    fn ballots_keep_within_their_rule() {
        assert!(check_ballot(VotingRule::UpToTotal, 100, &[60, 40]).is_ok());
        assert!(check_ballot(VotingRule::UpToTotal, 100, &[60, 41]).is_err());
        assert!(check_ballot(VotingRule::UpToTotal, 100, &[]).is_err());
        assert!(check_ballot(VotingRule::UpToTotal, i64::MAX, &[i64::MAX, 1]).is_err());
        assert!(check_ballot(VotingRule::AtMost(2), 100, &[90, 90]).is_ok());
        assert!(check_ballot(VotingRule::AtMost(2), 100, &[1, 1, 1]).is_err());
    }

    #[test]
    fn phases_move_forward_one_at_a_time() {
        assert_eq!(
            next_phase(BudgetPhase::Proposing),
            Some(BudgetPhase::Reviewing)
        );
        assert_eq!(
            next_phase(BudgetPhase::Reviewing),
            Some(BudgetPhase::Voting)
        );
        assert_eq!(next_phase(BudgetPhase::Voting), Some(BudgetPhase::Results));
        assert_eq!(next_phase(BudgetPhase::Results), None);
        for phase in [
            BudgetPhase::Proposing,
            BudgetPhase::Reviewing,
            BudgetPhase::Voting,
            BudgetPhase::Results,
        ] {
            assert_eq!(phase_from_db(phase_to_db(phase)), phase);
        }
    }
}
