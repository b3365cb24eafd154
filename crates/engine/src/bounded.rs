//! Values a query's functions build count against the query's memory pool. DataFusion accounts
//! what its operators hold (a sort's rows, a join's build side), but a scalar function allocates
//! its result outside any pool: `repeat('x', 1000000000)`, `range(0, 200000000)` or `lpad('', n)`
//! each ask for gigabytes in one call, and a concatenation that doubles a value a step at a time
//! gets there in thirty steps. So every scalar function of a plan runs wrapped:
//!
//! ```text
//!   estimate the result from the arguments ──► reserve it in the pool ──► call the function
//!        (repeat: length × count, range:          (over the limit: refused,        │
//!         the count of elements, …; any           nothing allocated)               ▼
//!         other: the arguments' own size)                           resize the reservation to the
//!                                                                   result, and hand the reservation
//!                                                                   to the result's buffers: it is
//!                                                                   released when the last batch
//!                                                                   holding them is dropped
//! ```
//!
//! The `||` of two strings is an operator, not a function: it becomes [`TextConcat`], the same
//! concatenation, wrapped like the rest. Array `||` is planned as `array_concat` and friends,
//! already functions.

use std::hash::{Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::ptr::NonNull;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, make_array};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer, NullBuffer};
use datafusion::arrow::compute::kernels::{cast::cast, concat_elements::concat_elements_dyn, length::length};
use datafusion::arrow::datatypes::{DataType, Int64Type, IntervalMonthDayNanoType, IntervalUnit, TimeUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchemaRef, DataFusionError, Result, ScalarValue};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation};
use datafusion::logical_expr::ExprSchemable;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, LogicalPlan, Operator, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::optimizer::{AnalyzerRule, OptimizerConfig, OptimizerRule};

/// The largest value a function may build from constants alone (a constant of the plan).
const MAX_CONSTANT: usize = 1 << 20;

/// One value repeated for every row of a batch beyond this many bytes is made an array here, where
/// it is reserved, rather than later by the operator that spreads it.
const SPREAD: usize = 1 << 20;

/// A literal larger than this goes through [`Constant`], so that spreading it over a batch's rows
/// is reserved too.
const LARGE_LITERAL: usize = 4 << 10;

/// The analyzer rule that wraps a plan's functions with the pool of the query it belongs to.
#[derive(Debug)]
pub(crate) struct BoundFunctions {
    pool: Arc<dyn MemoryPool>,
}

impl BoundFunctions {
    pub(crate) const NAME: &'static str = "bound_functions";

    pub(crate) fn new(pool: Arc<dyn MemoryPool>) -> Arc<Self> {
        Arc::new(Self { pool })
    }

    fn bound(&self, expr: Expr, inputs: &[DFSchemaRef]) -> Result<Transformed<Expr>> {
        match expr {
            Expr::BinaryExpr(BinaryExpr { left, op: Operator::StringConcat, right }) => {
                let typed = |e: &Expr| inputs.iter().find_map(|s| e.get_type(s).ok());
                match (typed(&left), typed(&right)) {
                    (Some(l), Some(r)) if l == r && is_text(&l) => {
                        let concat = Arc::new(ScalarUDF::new_from_impl(TextConcat::new()));
                        let func =
                            Arc::new(ScalarUDF::new_from_impl(Bounded { inner: concat, pool: Arc::clone(&self.pool) }));
                        Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction { func, args: vec![*left, *right] })))
                    }
                    _ => Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr { left, op: Operator::StringConcat, right }))),
                }
            }
            other => bound_function(other, &self.pool),
        }
    }
}

/// `expr` with its function, if it is a call of one not yet bounded, bounded by `pool`.
fn bound_function(expr: Expr, pool: &Arc<dyn MemoryPool>) -> Result<Transformed<Expr>> {
    match expr {
        Expr::ScalarFunction(f) if f.func.inner().downcast_ref::<Bounded>().is_none() => {
            let func = Arc::new(ScalarUDF::new_from_impl(Bounded { inner: f.func, pool: Arc::clone(pool) }));
            Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction { func, args: f.args })))
        }
        other => Ok(Transformed::no(other)),
    }
}

/// After the optimizer: a function it introduced is bounded too, and a large literal (a constant
/// it folded, or one written in the statement) goes through [`Constant`], so that spreading it
/// over a batch's rows is reserved.
impl OptimizerRule for BoundFunctions {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        plan.transform_down_with_subqueries(|node| {
            let names = NamePreserver::new(&node);
            node.map_expressions(|e| {
                let saved = names.save(&e);
                let bounded = e.transform_down(|e| match e {
                    // Already done, its literal included.
                    Expr::ScalarFunction(f) if f.func.inner().downcast_ref::<Bounded>().is_some() => {
                        let skip = f.func.name() == "constant";
                        let e = Expr::ScalarFunction(f);
                        Ok(if skip { Transformed::new(e, false, TreeNodeRecursion::Jump) } else { Transformed::no(e) })
                    }
                    Expr::Literal(value, metadata) if value.size() > LARGE_LITERAL => {
                        let constant = Arc::new(ScalarUDF::new_from_impl(Constant::new()));
                        let func = Arc::new(ScalarUDF::new_from_impl(Bounded {
                            inner: constant,
                            pool: Arc::clone(&self.pool),
                        }));
                        let args = vec![Expr::Literal(value, metadata)];
                        Ok(Transformed::new(
                            Expr::ScalarFunction(ScalarFunction { func, args }),
                            true,
                            TreeNodeRecursion::Jump,
                        ))
                    }
                    other => bound_function(other, &self.pool),
                })?;
                Ok(bounded.update_data(|e| saved.restore(e)))
            })
        })
    }
}

impl AnalyzerRule for BoundFunctions {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            let names = NamePreserver::new(&node);
            let inputs: Vec<DFSchemaRef> = node.inputs().iter().map(|i| Arc::clone(i.schema())).collect();
            node.map_expressions(|e| {
                let saved = names.save(&e);
                Ok(e.transform_up(|e| self.bound(e, &inputs))?.update_data(|e| saved.restore(e)))
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        Self::NAME
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// A function whose result is reserved in the query's pool before and after it is built.
#[derive(Debug)]
struct Bounded {
    inner: Arc<ScalarUDF>,
    pool: Arc<dyn MemoryPool>,
}

impl PartialEq for Bounded {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner && std::ptr::addr_eq(Arc::as_ptr(&self.pool), Arc::as_ptr(&other.pool))
    }
}

impl Eq for Bounded {}

impl Hash for Bounded {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
    }
}

impl Bounded {
    fn refused_constant(&self, bytes: usize) -> DataFusionError {
        DataFusionError::ResourcesExhausted(format!(
            "{}() would build a value of {} from constants alone, and such a value may be at most {}",
            self.inner.name(),
            human(bytes),
            human(MAX_CONSTANT)
        ))
    }

    fn refused(&self, bytes: usize) -> DataFusionError {
        let limit = match self.pool.memory_limit() {
            MemoryLimit::Finite(n) => format!("; the query's memory limit is {}", human(n)),
            _ => String::new(),
        };
        DataFusionError::ResourcesExhausted(format!(
            "{}() would build {} of values, more than the query has left{limit}",
            self.inner.name(),
            human(bytes)
        ))
    }
}

#[warn(clippy::missing_trait_methods)] // Delegates: every method but the call itself is the inner one's.
impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn display_name(&self, args: &[Expr]) -> Result<String> {
        #[expect(deprecated)]
        self.inner.inner().display_name(args)
    }

    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        self.inner.inner().schema_name(args)
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.inner().return_type(arg_types)
    }

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        self.inner.inner().return_field_from_args(args)
    }

    fn is_nullable(&self, args: &[Expr], schema: &dyn datafusion::common::ExprSchema) -> bool {
        #[expect(deprecated)]
        self.inner.inner().is_nullable(args, schema)
    }

    fn is_strict(&self) -> bool {
        self.inner.inner().is_strict()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let estimate = estimate(self.inner.name(), &args.args, rows)?;
        // A value made of constants alone becomes a constant of the plan, which planning copies
        // around: it is kept small.
        let constant = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        if constant && estimate > MAX_CONSTANT {
            return Err(self.refused_constant(estimate));
        }
        let reservation = MemoryConsumer::new(format!("{}()", self.inner.name())).register(&self.pool);
        reservation.try_grow(estimate).map_err(|_| self.refused(estimate))?;
        let array = match self.inner.invoke_with_args(args)? {
            ColumnarValue::Array(array) => array,
            ColumnarValue::Scalar(value) if value.size() > MAX_CONSTANT => {
                return Err(self.refused_constant(value.size()));
            }
            // One value for every row: small ones stay one value; a larger one is the rows' copies
            // it will become, reserved as such.
            ColumnarValue::Scalar(value) if rows <= 1 || value.size().saturating_mul(rows) <= SPREAD => {
                return Ok(ColumnarValue::Scalar(value));
            }
            ColumnarValue::Scalar(value) => {
                let spread = value.size().saturating_mul(rows);
                reservation.try_resize(spread).map_err(|_| self.refused(spread))?;
                value.to_array_of_size(rows)?
            }
        };
        let size = array.get_array_memory_size();
        reservation.try_resize(size).map_err(|_| self.refused(size))?;
        Ok(ColumnarValue::Array(held(array, reservation)))
    }

    fn with_updated_config(&self, _config: &ConfigOptions) -> Option<ScalarUDF> {
        None
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    // The inner function's, with the functions its simplification calls bounded too (some
    // functions are only ever simplified into others, never called).
    fn simplify(
        &self,
        args: Vec<Expr>,
        info: &datafusion::logical_expr::simplify::SimplifyContext,
    ) -> Result<datafusion::logical_expr::simplify::ExprSimplifyResult> {
        use datafusion::logical_expr::simplify::ExprSimplifyResult;
        Ok(match self.inner.inner().simplify(args, info)? {
            ExprSimplifyResult::Simplified(expr) => {
                ExprSimplifyResult::Simplified(expr.transform_up(|e| bound_function(e, &self.pool))?.data)
            }
            original => original,
        })
    }

    fn preimage(
        &self,
        args: &[Expr],
        lit_expr: &Expr,
        info: &datafusion::logical_expr::simplify::SimplifyContext,
    ) -> Result<datafusion::logical_expr::preimage::PreimageResult> {
        self.inner.inner().preimage(args, lit_expr, info)
    }

    fn conditional_arguments<'a>(&self, args: &'a [Expr]) -> Option<(Vec<&'a Expr>, Vec<&'a Expr>)> {
        self.inner.inner().conditional_arguments(args)
    }

    fn short_circuits(&self) -> bool {
        self.inner.inner().short_circuits()
    }

    fn evaluate_bounds(
        &self,
        input: &[&datafusion::logical_expr::interval_arithmetic::Interval],
    ) -> Result<datafusion::logical_expr::interval_arithmetic::Interval> {
        self.inner.inner().evaluate_bounds(input)
    }

    fn propagate_constraints(
        &self,
        interval: &datafusion::logical_expr::interval_arithmetic::Interval,
        inputs: &[&datafusion::logical_expr::interval_arithmetic::Interval],
    ) -> Result<Option<Vec<datafusion::logical_expr::interval_arithmetic::Interval>>> {
        self.inner.inner().propagate_constraints(interval, inputs)
    }

    fn struct_field_mapping(
        &self,
        literal_args: &[Option<ScalarValue>],
    ) -> Option<datafusion::logical_expr::StructFieldMapping> {
        self.inner.inner().struct_field_mapping(literal_args)
    }

    fn output_ordering(
        &self,
        inputs: &[datafusion::logical_expr::sort_properties::ExprProperties],
    ) -> Result<datafusion::logical_expr::sort_properties::SortProperties> {
        self.inner.inner().output_ordering(inputs)
    }

    fn preserves_lex_ordering(
        &self,
        inputs: &[datafusion::logical_expr::sort_properties::ExprProperties],
    ) -> Result<bool> {
        self.inner.inner().preserves_lex_ordering(inputs)
    }

    fn strictly_order_preserving(
        &self,
        inputs: &[datafusion::logical_expr::sort_properties::ExprProperties],
    ) -> Result<bool> {
        self.inner.inner().strictly_order_preserving(inputs)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.inner().coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&datafusion::logical_expr::Documentation> {
        self.inner.inner().documentation()
    }

    fn placement(
        &self,
        args: &[datafusion::logical_expr::ExpressionPlacement],
    ) -> datafusion::logical_expr::ExpressionPlacement {
        self.inner.inner().placement(args)
    }
}

/// A large literal, as it is: volatile, so that planning does not fold it back into a literal
/// whose copies for each row nothing reserves.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Constant {
    signature: Signature,
}

impl Constant {
    fn new() -> Self {
        Self { signature: Signature::any(1, Volatility::Volatile) }
    }
}

impl ScalarUDFImpl for Constant {
    fn name(&self) -> &str {
        "constant"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }

    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        args.args.pop().ok_or_else(|| DataFusionError::Internal("a constant takes its value".into()))
    }
}

/// `text || text` as PostgreSQL has it: NULL when either side is.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TextConcat {
    signature: Signature,
}

impl TextConcat {
    fn new() -> Self {
        Self { signature: Signature::any(2, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for TextConcat {
    fn name(&self) -> &str {
        "textcat"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let [left, right] = args.args.as_slice() else {
            return Err(DataFusionError::Internal("|| takes two values".into()));
        };
        let joined = concat_elements_dyn(&left.to_array(rows)?, &right.to_array(rows)?)?;
        Ok(match scalar {
            true => ColumnarValue::Scalar(ScalarValue::try_from_array(&joined, 0)?),
            false => ColumnarValue::Array(joined),
        })
    }
}

/// What a call of `function` with `args` will build, in bytes, at most — without building it.
fn estimate(function: &str, args: &[ColumnarValue], rows: usize) -> Result<usize> {
    let per_row = |size: &dyn Fn(usize) -> u128| (0..rows).map(size).sum::<u128>();
    let total = match function {
        "repeat" => {
            let (text, times) = (lengths(args, 0, rows)?, integers(args, 1, rows)?);
            per_row(&|r| text[r] * times[r])
        }
        // Up to four bytes a character.
        "lpad" | "rpad" => {
            let width = integers(args, 1, rows)?;
            per_row(&|r| width[r] * 4)
        }
        "array_repeat" => {
            let times = integers(args, 1, rows)?;
            let element = (size_of_arg(&args[0]) / rows.max(1)).max(8) as u128;
            per_row(&|r| times[r] * element)
        }
        "array_resize" => {
            let length = integers(args, 1, rows)?;
            per_row(&|r| length[r] * 16)
        }
        "range" | "generate_series" => elements(args, rows)? * 8,
        // Every match replaced: at most one a byte of the original (an empty pattern matches
        // between bytes too).
        "replace" => {
            let (text, from, to) = (lengths(args, 0, rows)?, lengths(args, 1, rows)?, lengths(args, 2, rows)?);
            per_row(&|r| text[r] + (text[r] / from[r].max(1)) * to[r])
        }
        "regexp_replace" => {
            let (text, to) = (lengths(args, 0, rows)?, lengths(args, 2, rows)?);
            per_row(&|r| text[r] + (text[r] + 1) * to[r])
        }
        "array_replace" | "array_replace_n" | "array_replace_all" => {
            let elements = (size_of_arg(&args[0]) / 8) as u128;
            let to = size_of_arg(&args[2]) / rows.max(1);
            elements * to as u128 + args.iter().map(|a| size_of_arg(a) as u128).sum::<u128>()
        }
        // Concatenations and everything else: about the size of what goes in.
        _ => args.iter().map(|a| size_of_arg(a) as u128).sum::<u128>(),
    };
    Ok(usize::try_from(total).unwrap_or(usize::MAX))
}

fn size_of_arg(arg: &ColumnarValue) -> usize {
    match arg {
        ColumnarValue::Array(a) => a.get_array_memory_size(),
        ColumnarValue::Scalar(s) => s.size(),
    }
}

/// Argument `at` as byte lengths, a row each (0 for NULL or a missing argument).
fn lengths(args: &[ColumnarValue], at: usize, rows: usize) -> Result<Vec<u128>> {
    let Some(arg) = args.get(at) else { return Ok(vec![0; rows]) };
    let array = arg.to_array(rows)?;
    if !is_text(array.data_type()) && !matches!(array.data_type(), DataType::Binary | DataType::LargeBinary) {
        return Ok(vec![(size_of_arg(arg) / rows.max(1)) as u128; rows]);
    }
    let lengths = cast(&length(&array)?, &DataType::Int64)?;
    Ok(lengths.as_primitive::<Int64Type>().iter().map(|n| n.unwrap_or(0).max(0) as u128).collect())
}

/// Argument `at` as whole numbers, a row each (0 for NULL, a negative number, or none given).
fn integers(args: &[ColumnarValue], at: usize, rows: usize) -> Result<Vec<u128>> {
    let Some(arg) = args.get(at) else { return Ok(vec![0; rows]) };
    let array = cast(&arg.to_array(rows)?, &DataType::Int64)?;
    Ok(array.as_primitive::<Int64Type>().iter().map(|n| n.unwrap_or(0).max(0) as u128).collect())
}

/// How many elements `range` or `generate_series` makes, over all rows: `(stop)`, `(start,
/// stop)` or `(start, stop, step)` of whole numbers, dates or timestamps (a step of months
/// counted as its shortest, 28 days).
fn elements(args: &[ColumnarValue], rows: usize) -> Result<u128> {
    const DAY: i128 = 86_400_000_000_000;
    // Days and instants in nanoseconds, in 128 bits: a far date overflows nothing.
    let as_i128 = |at: usize| -> Result<Vec<Option<i128>>> {
        let array = args[at].to_array(rows)?;
        let per_unit: i128 = match array.data_type() {
            DataType::Date32 => DAY,
            DataType::Date64 | DataType::Timestamp(TimeUnit::Millisecond, _) => 1_000_000,
            DataType::Timestamp(TimeUnit::Second, _) => 1_000_000_000,
            DataType::Timestamp(TimeUnit::Microsecond, _) => 1_000,
            _ => 1,
        };
        let numbers = cast(&array, &DataType::Int64)?;
        Ok(numbers.as_primitive::<Int64Type>().iter().map(|n| n.map(|n| i128::from(n) * per_unit)).collect())
    };
    let (start, stop) = match args.len() {
        1 => (vec![Some(0); rows], as_i128(0)?),
        _ => (as_i128(0)?, as_i128(1)?),
    };
    let step: Vec<Option<i128>> = match args.get(2) {
        None => vec![Some(1); rows],
        Some(arg) => {
            let array = arg.to_array(rows)?;
            match array.data_type() {
                DataType::Interval(IntervalUnit::MonthDayNano) => array
                    .as_primitive::<IntervalMonthDayNanoType>()
                    .iter()
                    .map(|i| {
                        i.map(|i| {
                            i128::from(i.months) * 28 * DAY + i128::from(i.days) * DAY + i128::from(i.nanoseconds)
                        })
                    })
                    .collect(),
                DataType::Interval(_) => {
                    let array = cast(&array, &DataType::Interval(IntervalUnit::MonthDayNano))?;
                    array
                        .as_primitive::<IntervalMonthDayNanoType>()
                        .iter()
                        .map(|i| {
                            i.map(|i| {
                                i128::from(i.months) * 28 * DAY + i128::from(i.days) * DAY + i128::from(i.nanoseconds)
                            })
                        })
                        .collect()
                }
                _ => cast(&array, &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .iter()
                    .map(|n| n.map(i128::from))
                    .collect(),
            }
        }
    };
    Ok((0..rows)
        .map(|r| match (start[r], stop[r], step[r]) {
            (Some(a), Some(b), Some(s)) if s != 0 => ((b - a) / s).max(-1) as u128 + 1,
            _ => 0,
        })
        .sum())
}

/// `array` with `reservation` owned by its buffers: released when the last of them is dropped.
fn held(array: ArrayRef, reservation: MemoryReservation) -> ArrayRef {
    let owner: Arc<AssertUnwindSafe<MemoryReservation>> = Arc::new(AssertUnwindSafe(reservation));
    make_array(rehome(array.to_data(), &owner))
}

type Owner = Arc<AssertUnwindSafe<MemoryReservation>>;

fn rehome(data: datafusion::arrow::array::ArrayData, owner: &Owner) -> datafusion::arrow::array::ArrayData {
    let buffers = data.buffers().iter().map(|b| rehome_buffer(b, owner)).collect();
    let children = data.child_data().iter().map(|c| rehome(c.clone(), owner)).collect();
    let nulls = data.nulls().map(|n| {
        let bits = n.inner();
        NullBuffer::new(BooleanBuffer::new(rehome_buffer(bits.inner(), owner), bits.offset(), bits.len()))
    });
    let builder = data.into_builder().buffers(buffers).child_data(children).nulls(nulls);
    // SAFETY: the same bytes, in the same layout, as `data`, which is a valid array: only what
    // keeps the bytes alive changed.
    unsafe { builder.build_unchecked() }
}

fn rehome_buffer(buffer: &Buffer, owner: &Owner) -> Buffer {
    let Some(ptr) = NonNull::new(buffer.as_ptr().cast_mut()) else { return buffer.clone() };
    let keeper = Arc::new(AssertUnwindSafe((buffer.clone(), Arc::clone(owner))));
    // SAFETY: `keeper` holds `buffer`, so its `len` bytes at `ptr` stay allocated and unchanged
    // (buffers are immutable) for as long as the new buffer lives.
    unsafe { Buffer::from_custom_allocation(ptr, buffer.len(), keeper) }
}

/// Bytes as people read them: "1.9 GiB", "512 MiB", "300 bytes".
fn human(bytes: usize) -> String {
    const UNITS: [(&str, usize); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            let value = bytes as f64 / size as f64;
            return if value >= 10.0 { format!("{value:.0} {unit}") } else { format!("{value:.1} {unit}") };
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use datafusion::execution::memory_pool::GreedyMemoryPool;

    use super::*;

    fn scalar(v: ScalarValue) -> ColumnarValue {
        ColumnarValue::Scalar(v)
    }

    #[test]
    fn the_estimates_see_the_size_before_it_is_built() {
        let text = scalar(ScalarValue::Utf8(Some("xy".into())));
        let count = scalar(ScalarValue::Int64(Some(1_000_000_000)));
        assert_eq!(estimate("repeat", &[text.clone(), count.clone()], 1).unwrap(), 2_000_000_000);
        assert_eq!(estimate("lpad", &[text.clone(), count.clone()], 1).unwrap(), 4_000_000_000);
        let (zero, big) = (scalar(ScalarValue::Int64(Some(0))), scalar(ScalarValue::Int64(Some(200_000_000))));
        assert_eq!(estimate("range", &[zero.clone(), big.clone()], 1).unwrap(), 200_000_001 * 8);
        assert_eq!(estimate("range", std::slice::from_ref(&big), 1).unwrap(), 200_000_001 * 8);
        let day = scalar(ScalarValue::new_interval_mdn(0, 1, 0));
        let (from, to) = (scalar(ScalarValue::Date32(Some(0))), scalar(ScalarValue::Date32(Some(3_000_000))));
        assert_eq!(estimate("generate_series", &[from, to, day], 1).unwrap(), 3_000_001 * 8);
        let (one, empty) =
            (scalar(ScalarValue::Utf8(Some("x".repeat(1000)))), scalar(ScalarValue::Utf8(Some(String::new()))));
        let bound = estimate("regexp_replace", &[one, empty, text.clone()], 1).unwrap();
        assert_eq!(bound, 1000 + 1001 * 2, "an empty pattern matches at every byte");
        assert_eq!(estimate("repeat", &[text, scalar(ScalarValue::Int64(Some(-5)))], 1).unwrap(), 0);
    }

    #[test]
    fn a_result_over_what_the_pool_has_left_is_refused_before_it_is_built_and_a_kept_one_holds_its_bytes() {
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1 << 20));
        let repeat = datafusion::functions::string::repeat();
        let bounded = Bounded { inner: repeat, pool: Arc::clone(&pool) };
        let call = |times: i64, rows: usize| {
            let text = ColumnarValue::Array(Arc::new(datafusion::arrow::array::StringArray::from(vec!["ab"; rows])));
            let args = vec![text, scalar(ScalarValue::Int64(Some(times)))];
            let arg_fields = vec![
                Arc::new(datafusion::arrow::datatypes::Field::new("t", DataType::Utf8, true)),
                Arc::new(datafusion::arrow::datatypes::Field::new("n", DataType::Int64, true)),
            ];
            let return_field = Arc::new(datafusion::arrow::datatypes::Field::new("r", DataType::Utf8, true));
            let config_options = Arc::new(ConfigOptions::default());
            bounded.invoke_with_args(ScalarFunctionArgs {
                args,
                arg_fields,
                number_rows: rows,
                return_field,
                config_options,
            })
        };
        let refused = call(1_000_000_000, 4).unwrap_err().to_string();
        assert!(refused.contains("repeat() would build 7.5 GiB of values"), "{refused}");
        assert!(refused.contains("the query's memory limit is 1.0 MiB"), "{refused}");
        assert_eq!(pool.reserved(), 0, "nothing held for what was refused");

        let kept = call(1000, 100).unwrap();
        let held_bytes = pool.reserved();
        assert!(held_bytes >= 200_000, "the result's bytes count while it lives: {held_bytes}");
        let ColumnarValue::Array(array) = kept else { panic!("an array for an array") };
        assert_eq!(array.as_string::<i32>().value(99).len(), 2000, "the same values");
        let slice = array.slice(0, 1);
        drop(array);
        assert_eq!(pool.reserved(), held_bytes, "a slice keeps them");
        drop(slice);
        assert_eq!(pool.reserved(), 0, "released with the last of them");
    }
}
