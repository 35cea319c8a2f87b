using Dashboard.Benchmarks;

// Usage: dotnet run -c Release --project tests/Dashboard.Benchmarks -- readers [rules]
var what = args.Length > 0 ? args[0] : "readers";
var n = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 10_000;
return what switch
{
    "readers" => await ReaderBenchmark.RunAsync(n),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Dashboard.Benchmarks readers [rules]");
    return 64;
}
