from bench.meters.run import main

main()
